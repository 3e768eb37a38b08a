// SPDX-License-Identifier: GPL-2.0

//! Heap backends: each turns a length into a [`crate::buffer::Backing`].

pub(crate) mod system;
