// SPDX-License-Identifier: GPL-2.0
/*
 * Real importers: V4L2's test drivers take heap buffers as
 * V4L2_MEMORY_DMABUF, as a camera pipeline does. The guest boots with two
 * vivid instances (vivid.n_devs=2 vivid.allocators=0,1):
 *
 * - vivid-000 (vmalloc): attaches and vmaps each buffer; every heap works;
 * - vivid-001 (dma-contig, 32-bit DMA mask): needs each buffer as one
 *   contiguous DMA range; contiguous heaps work, a scattered buffer is
 *   refused at VIDIOC_QBUF (EFAULT) and leaves nothing behind;
 *
 * and vim2m copies an OUTPUT buffer into a CAPTURE buffer (vmap on both).
 * The auto heap's buffers get memory at their first use: scattered pages
 * when vivid-000 or vim2m vmaps them, one contiguous range when vivid-001
 * maps them.
 * Frames are compared with what the same device captures into its own
 * (V4L2_MEMORY_MMAP) buffers, with vivid's on-screen text turned off.
 */
#include <dirent.h>
#include <linux/videodev2.h>

#include "../kselftest_harness.h"
#include "rdh.h"

#define NBUFS 2
#define FRAMES 3
#define OSD_NONE 2

FIXTURE(v4l2) {
	int heap;
	int bufs;
};

FIXTURE_VARIANT(v4l2) {
	const char *name;
	/* Every buffer is one physically contiguous range. */
	bool contiguous;
	/*
	 * No struct page behind the memory (no-map carve-out): refused to
	 * dma-contig, a static importer (not peer2peer).
	 */
	bool pageless;
	/* Memory chosen at first use (auto): contiguous for dma-contig. */
	bool deferred;
};

FIXTURE_VARIANT_ADD(v4l2, system) { .name = "system" };
FIXTURE_VARIANT_ADD(v4l2, system_uncached) { .name = "system-uncached" };
FIXTURE_VARIANT_ADD(v4l2, auto) { .name = "auto", .deferred = true };
FIXTURE_VARIANT_ADD(v4l2, default_cma_region) { .name = "default_cma_region", .contiguous = true };
FIXTURE_VARIANT_ADD(v4l2, linux_cma) { .name = "linux,cma", .contiguous = true };
FIXTURE_VARIANT_ADD(v4l2, video) { .name = "video", .contiguous = true };
FIXTURE_VARIANT_ADD(v4l2, carveout_nomap) {
	.name = "carveout@b0000000", .contiguous = true, .pageless = true,
};
FIXTURE_VARIANT_ADD(v4l2, carveout_mapped) { .name = "carveout@b4000000", .contiguous = true };

FIXTURE_SETUP(v4l2)
{
	self->heap = rdh_fixture_open(variant->name, &self->bufs);
	if (self->heap == RDH_MISSING)
		SKIP(return, "no heap %s of ours on this machine", variant->name);
	ASSERT_LE(0, self->heap) TH_LOG("heap %s: %s", variant->name, strerror(-self->heap));
}

FIXTURE_TEARDOWN(v4l2)
{
	RDH_TEARDOWN_HEAP(self->heap, self->bufs, variant->name);
}

/* Open the video node whose name (sysfs) is @name; fd or -errno. */
static int open_video(const char *name)
{
	DIR *d = opendir("/sys/class/video4linux");
	char path[512], text[64];
	struct dirent *e;
	int fd = -ENOENT;

	if (!d)
		return -errno;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "video", 5))
			continue;
		snprintf(path, sizeof(path), "/sys/class/video4linux/%s/name", e->d_name);
		if (rdh_read_text(path, text, sizeof(text)))
			continue;
		text[strcspn(text, "\n")] = '\0';
		if (strcmp(text, name))
			continue;
		snprintf(path, sizeof(path), "/dev/%s", e->d_name);
		fd = open(path, O_RDWR | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
		break;
	}
	closedir(d);
	return fd;
}

/* Set the control named @name of @vfd to @value; 0 or -errno. */
static int set_ctrl(int vfd, const char *name, int value)
{
	struct v4l2_queryctrl q = { .id = V4L2_CTRL_FLAG_NEXT_CTRL };
	struct v4l2_control c;

	while (!ioctl(vfd, VIDIOC_QUERYCTRL, &q)) {
		if (!strcmp((const char *)q.name, name)) {
			c.id = q.id;
			c.value = value;
			return ioctl(vfd, VIDIOC_S_CTRL, &c) ? -errno : 0;
		}
		q.id |= V4L2_CTRL_FLAG_NEXT_CTRL;
	}
	return -ENOENT;
}

/* A vivid capture node with its text overlay off, and its format. */
static int open_vivid(const char *name, struct v4l2_format *fmt)
{
	int vfd = open_video(name), ret;

	if (vfd < 0)
		return vfd;
	memset(fmt, 0, sizeof(*fmt));
	fmt->type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	ret = set_ctrl(vfd, "OSD Text Mode", OSD_NONE);
	if (!ret && ioctl(vfd, VIDIOC_G_FMT, fmt))
		ret = -errno;
	if (ret) {
		close(vfd);
		return ret;
	}
	return vfd;
}

/* Copy @size bytes of dma-buf @fd into @out, synced for the CPU. */
static int read_buf(int fd, size_t size, unsigned char *out)
{
	void *p = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	int ret;

	if (p == MAP_FAILED)
		return -errno;
	ret = rdh_sync(fd, DMA_BUF_SYNC_START | DMA_BUF_SYNC_READ);
	memcpy(out, p, size);
	if (!ret)
		ret = rdh_sync(fd, DMA_BUF_SYNC_END | DMA_BUF_SYNC_READ);
	munmap(p, size);
	return ret;
}

/*
 * A capture session on @vfd: @NBUFS buffers, FRAMES frames dequeued and
 * requeued. Into the device's own buffers (@fds NULL) or into dma-bufs
 * @fds of @len bytes. Each frame goes to @check(frame, arg); a failing
 * step is named in *step and its -errno returned.
 */
struct session {
	int vfd;
	const int *fds;
	size_t len;
	size_t size;		/* sizeimage */
	unsigned char *frame;	/* size bytes */
	const char *step;
	int bad_frame;		/* frames that did not match */
	const unsigned char *want;	/* NULL: store the first frame here */
	unsigned char *ref;
};

static int capture(struct session *s)
{
	unsigned int memory = s->fds ? V4L2_MEMORY_DMABUF : V4L2_MEMORY_MMAP;
	struct v4l2_requestbuffers rb = {
		.count = NBUFS, .type = V4L2_BUF_TYPE_VIDEO_CAPTURE, .memory = memory,
	};
	int type = V4L2_BUF_TYPE_VIDEO_CAPTURE, i, ret = 0, streaming = 0;
	void *maps[NBUFS] = { 0 };
	size_t maplen[NBUFS] = { 0 };
	struct v4l2_buffer b;

	s->bad_frame = 0;
	s->step = "REQBUFS";
	if (ioctl(s->vfd, VIDIOC_REQBUFS, &rb))
		return -errno;
	if (rb.count < NBUFS) {
		ret = -ENOMEM;
		goto out;
	}
	for (i = 0; i < NBUFS; i++) {
		memset(&b, 0, sizeof(b));
		b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		b.memory = memory;
		b.index = i;
		if (s->fds) {
			b.m.fd = s->fds[i];
			b.length = s->len;
		} else {
			s->step = "QUERYBUF";
			if (ioctl(s->vfd, VIDIOC_QUERYBUF, &b)) {
				ret = -errno;
				goto out;
			}
			maps[i] = mmap(NULL, b.length, PROT_READ, MAP_SHARED, s->vfd,
				       b.m.offset);
			if (maps[i] == MAP_FAILED) {
				maps[i] = NULL;
				ret = -errno;
				goto out;
			}
			maplen[i] = b.length;
		}
		s->step = "QBUF";
		if (ioctl(s->vfd, VIDIOC_QBUF, &b)) {
			ret = -errno;
			goto out;
		}
	}
	s->step = "STREAMON";
	if (ioctl(s->vfd, VIDIOC_STREAMON, &type)) {
		ret = -errno;
		goto out;
	}
	streaming = 1;
	for (i = 0; i < FRAMES; i++) {
		memset(&b, 0, sizeof(b));
		b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
		b.memory = memory;
		s->step = "DQBUF";
		if (ioctl(s->vfd, VIDIOC_DQBUF, &b)) {
			ret = -errno;
			goto out;
		}
		s->step = "bytesused";
		if (b.bytesused != s->size) {
			ret = -EMSGSIZE;
			goto out;
		}
		if (s->fds) {
			s->step = "read";
			ret = read_buf(s->fds[b.index], s->size, s->frame);
			if (ret)
				goto out;
		} else {
			memcpy(s->frame, maps[b.index], s->size);
		}
		if (s->want && memcmp(s->frame, s->want, s->size))
			s->bad_frame++;
		if (!s->want && s->ref)
			memcpy(s->ref, s->frame, s->size);
		s->step = "QBUF again";
		if (ioctl(s->vfd, VIDIOC_QBUF, &b)) {
			ret = -errno;
			goto out;
		}
	}
out:
	if (streaming)
		ioctl(s->vfd, VIDIOC_STREAMOFF, &type);
	for (i = 0; i < NBUFS; i++)
		if (maps[i])
			munmap(maps[i], maplen[i]);
	rb.count = 0;
	ioctl(s->vfd, VIDIOC_REQBUFS, &rb);
	return ret;
}

/* Whether any byte of @p is non-zero. */
static bool has_data(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return true;
	return false;
}

/* The frame vivid node @name captures into its own buffers. */
static int reference(const char *name, struct session *s, struct v4l2_format *fmt)
{
	int ret;

	s->vfd = open_vivid(name, fmt);
	if (s->vfd < 0)
		return s->vfd;
	s->size = fmt->fmt.pix.sizeimage;
	s->frame = malloc(s->size);
	s->ref = malloc(s->size);
	if (!s->frame || !s->ref)
		return -ENOMEM;
	s->fds = NULL;
	s->want = NULL;
	ret = capture(s);
	if (!ret)
		s->want = s->ref;
	return ret;
}

static void session_end(struct session *s)
{
	if (s->vfd >= 0)
		close(s->vfd);
	free(s->frame);
	free(s->ref);
}

/* Whether the pages of dma-buf @fd (@len bytes) are physically contiguous. */
static int contiguous(int fd, size_t len)
{
	uint64_t first, last;
	bool one;
	int ret = rdh_pfn_span(fd, len, &first, &last, &one);

	return ret ? ret : one;
}

/* vivid's vmalloc instance captures correct frames into buffers of any heap. */
TEST_F(v4l2, vivid_vmalloc_capture)
{
	struct session s = { .vfd = -1 };
	struct v4l2_format fmt;
	char mem[64] = "";
	int fds[NBUFS], i, ret;
	size_t len;

	ret = reference("vivid-000-vid-cap", &s, &fmt);
	if (ret == -ENOENT)
		SKIP(goto out, "no vivid-000-vid-cap (boot with vivid.n_devs=2)");
	ASSERT_EQ(0, ret) TH_LOG("reference capture: %s: %s", s.step, strerror(-ret));
	ASSERT_TRUE(has_data(s.ref, s.size));
	len = (s.size + PAGE - 1) / PAGE * PAGE;
	for (i = 0; i < NBUFS; i++) {
		fds[i] = rdh_alloc(self->heap, len, O_RDWR, 0);
		ASSERT_LE(0, fds[i]);
	}
	s.fds = fds;
	s.len = len;
	ret = capture(&s);
	EXPECT_EQ(0, ret) TH_LOG("%s: %s", s.step, strerror(-ret));
	EXPECT_EQ(0, s.bad_frame) TH_LOG("%d of %d frames differ from vivid's own",
					 s.bad_frame, FRAMES);
	for (i = 0; i < NBUFS; i++) {
		/* auto: vivid vmapped it first, so system pages. */
		if (variant->deferred)
			EXPECT_TRUE(!rdh_buffer_memory(fds[i], mem, sizeof(mem)) &&
				    !strcmp(mem, "system")) TH_LOG("memory %s", mem);
		close(fds[i]);
	}
out:
	session_end(&s);
}

/*
 * vivid's dma-contig instance (one contiguous chunk, 32-bit mask): correct
 * frames from contiguous heaps; a scattered buffer is refused at QBUF with
 * EFAULT, memory without struct page (a static importer) with EINVAL, and
 * nothing stays behind.
 */
TEST_F(v4l2, vivid_contig_capture)
{
	struct session s = { .vfd = -1 };
	char mem[64] = "";
	int fds[NBUFS], extra[16], nextra = 0, i, ret, c;
	struct v4l2_format fmt;
	size_t len;

	ret = reference("vivid-001-vid-cap", &s, &fmt);
	if (ret == -ENOENT)
		SKIP(goto out, "no vivid-001-vid-cap (boot with vivid.n_devs=2)");
	ASSERT_EQ(0, ret) TH_LOG("reference capture: %s: %s", s.step, strerror(-ret));
	len = (s.size + PAGE - 1) / PAGE * PAGE;
	s.fds = fds;
	s.len = len;
	if (variant->contiguous || variant->deferred) {
		for (i = 0; i < NBUFS; i++) {
			fds[i] = rdh_alloc(self->heap, len, O_RDWR, 0);
			ASSERT_LE(0, fds[i]);
			/* (auto: no memory yet, the device's first map chooses.) */
			if (!variant->deferred)
				ASSERT_EQ(1, contiguous(fds[i], len));
		}
		ret = capture(&s);
		if (variant->pageless) {
			/* vb2-dma-contig's map failed (EIO), reported as EINVAL. */
			EXPECT_EQ(-EINVAL, ret) TH_LOG("%s: %s", s.step, strerror(-ret));
			EXPECT_STREQ("QBUF", s.step);
			for (i = 0; i < NBUFS; i++)
				close(fds[i]);
			goto out;
		}
		EXPECT_EQ(0, ret) TH_LOG("%s: %s", s.step, strerror(-ret));
		EXPECT_EQ(0, s.bad_frame);
		for (i = 0; i < NBUFS; i++) {
			EXPECT_EQ(1, contiguous(fds[i], len));
			/* auto: vivid-001 mapped it first, so CMA. */
			if (variant->deferred)
				EXPECT_TRUE(!rdh_buffer_memory(fds[i], mem, sizeof(mem)) &&
					    !strcmp(mem, "default_cma_region")) TH_LOG("memory %s", mem);
		}
	} else {
		/* A buffer that is not one range (allocated until one is not). */
		for (c = 1; nextra < (int)ARRAY_SIZE(extra); nextra++) {
			extra[nextra] = rdh_alloc(self->heap, len, O_RDWR, 0);
			ASSERT_LE(0, extra[nextra]);
			c = contiguous(extra[nextra], len);
			ASSERT_LE(0, c);
			if (!c)
				break;
		}
		ASSERT_EQ(0, c) TH_LOG("%d buffers in a row were contiguous", nextra);
		fds[0] = fds[1] = extra[nextra++];
		ret = capture(&s);
		EXPECT_EQ(-EFAULT, ret) TH_LOG("%s: %s", s.step, strerror(-ret));
		EXPECT_STREQ("QBUF", s.step);
		for (i = 0; i < nextra; i++)
			close(extra[i]);
		goto out;
	}
	for (i = 0; i < NBUFS; i++)
		close(fds[i]);
out:
	session_end(&s);
}

/* Queue dma-buf @fd (@len bytes, @used filled) on queue @type of @vfd. */
static int queue(int vfd, int type, int fd, size_t len, size_t used)
{
	struct v4l2_requestbuffers rb = { .count = 1, .type = type, .memory = V4L2_MEMORY_DMABUF };
	struct v4l2_buffer b = {
		.type = type, .memory = V4L2_MEMORY_DMABUF, .index = 0,
		.length = len, .bytesused = used,
	};

	b.m.fd = fd;
	if (ioctl(vfd, VIDIOC_REQBUFS, &rb))
		return -errno;
	return ioctl(vfd, VIDIOC_QBUF, &b) ? -errno : 0;
}

/* vim2m copies one heap buffer into another, byte for byte. */
TEST_F(v4l2, vim2m_copy)
{
	struct v4l2_format in = { .type = V4L2_BUF_TYPE_VIDEO_OUTPUT };
	struct v4l2_format out = { .type = V4L2_BUF_TYPE_VIDEO_CAPTURE };
	int vfd = open_video("vim2m"), src, dst, types[2], i;
	struct v4l2_requestbuffers rb;
	struct v4l2_buffer b;
	unsigned char *p, *want, *got;
	size_t size, len;

	if (vfd == -ENOENT)
		SKIP(return, "no vim2m device");
	ASSERT_LE(0, vfd);
	ASSERT_EQ(0, ioctl(vfd, VIDIOC_G_FMT, &in));
	ASSERT_EQ(0, ioctl(vfd, VIDIOC_G_FMT, &out));
	ASSERT_EQ(in.fmt.pix.pixelformat, out.fmt.pix.pixelformat);
	ASSERT_EQ(in.fmt.pix.sizeimage, out.fmt.pix.sizeimage);
	size = in.fmt.pix.sizeimage;
	len = (size + PAGE - 1) / PAGE * PAGE;
	want = malloc(size);
	got = malloc(size);
	ASSERT_NE(NULL, want);
	ASSERT_NE(NULL, got);
	for (i = 0; i < (int)size; i++)
		want[i] = (i * 7 + 13) ^ (i >> 12);

	src = rdh_alloc(self->heap, len, O_RDWR, 0);
	dst = rdh_alloc(self->heap, len, O_RDWR, 0);
	ASSERT_LE(0, src);
	ASSERT_LE(0, dst);
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, src, 0);
	ASSERT_NE(MAP_FAILED, p);
	ASSERT_EQ(0, rdh_sync(src, DMA_BUF_SYNC_START | DMA_BUF_SYNC_WRITE));
	memcpy(p, want, size);
	ASSERT_EQ(0, rdh_sync(src, DMA_BUF_SYNC_END | DMA_BUF_SYNC_WRITE));
	munmap(p, len);

	ASSERT_EQ(0, queue(vfd, V4L2_BUF_TYPE_VIDEO_OUTPUT, src, len, size));
	ASSERT_EQ(0, queue(vfd, V4L2_BUF_TYPE_VIDEO_CAPTURE, dst, len, 0));
	types[0] = V4L2_BUF_TYPE_VIDEO_OUTPUT;
	types[1] = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, ioctl(vfd, VIDIOC_STREAMON, &types[i]));
	memset(&b, 0, sizeof(b));
	b.type = V4L2_BUF_TYPE_VIDEO_CAPTURE;
	b.memory = V4L2_MEMORY_DMABUF;
	ASSERT_EQ(0, ioctl(vfd, VIDIOC_DQBUF, &b));
	EXPECT_EQ(size, b.bytesused);
	if (variant->deferred) {
		char mem[64] = "";

		/* auto: written by the CPU, vmapped by vim2m: system pages. */
		EXPECT_TRUE(!rdh_buffer_memory(dst, mem, sizeof(mem)) && !strcmp(mem, "system"))
			TH_LOG("memory %s", mem);
	}
	ASSERT_EQ(0, read_buf(dst, size, got));
	for (i = 0; i < (int)size && got[i] == want[i]; i++)
		;
	EXPECT_EQ((int)size, i) TH_LOG("first difference at byte %d", i);
	for (i = 0; i < 2; i++) {
		ioctl(vfd, VIDIOC_STREAMOFF, &types[i]);
		rb = (struct v4l2_requestbuffers){ .type = types[i], .memory = V4L2_MEMORY_DMABUF };
		ioctl(vfd, VIDIOC_REQBUFS, &rb);
	}
	close(vfd);
	close(src);
	close(dst);
	free(want);
	free(got);
}

TEST_HARNESS_MAIN
