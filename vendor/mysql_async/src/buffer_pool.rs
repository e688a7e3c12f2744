// Copyright (c) 2021 Anatoly Ikorsky
//
// Licensed under the Apache License, Version 2.0
// <LICENSE-APACHE or http://www.apache.org/licenses/LICENSE-2.0> or the MIT
// license <LICENSE-MIT or http://opensource.org/licenses/MIT>, at your
// option. All files in the project carrying such notice may not be copied,
// modified, or distributed except according to those terms.

// binlog-cdc: patched (see vendor/README.md). Upstream keeps one
// `ArrayQueue` per process and an `Arc` in every buffer: each packet takes a
// buffer from the queue and gives it back, and clones and drops the `Arc`,
// so two threads reading rows at once write the same cache lines for every
// row. Here each thread keeps its own free list (at most
// `MYSQL_ASYNC_BUFFER_POOL_CAP` buffers, as upstream's queue), and a buffer
// refers to the pool without a count. A buffer given back on another thread
// than the one that took it joins that thread's list.

use std::{cell::RefCell, mem::take, ops::Deref};

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

#[derive(Debug)]
pub struct BufferPool {
    pool_cap: usize,
    buffer_size_cap: usize,
    buffer_init_cap: usize,
}

impl BufferPool {
    pub fn new() -> Self {
        let pool_cap = std::env::var("MYSQL_ASYNC_BUFFER_POOL_CAP")
            .ok()
            .and_then(|x| x.parse().ok())
            .unwrap_or(128_usize);

        let buffer_size_cap = std::env::var("MYSQL_ASYNC_BUFFER_SIZE_CAP")
            .ok()
            .and_then(|x| x.parse().ok())
            .unwrap_or(4 * 1024 * 1024);

        let buffer_init_cap = std::env::var("MYSQL_ASYNC_BUFFER_INIT_CAP")
            .ok()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);

        Self {
            pool_cap,
            buffer_size_cap,
            buffer_init_cap,
        }
    }

    pub fn get(&'static self) -> PooledBuf {
        let buf = FREE
            .try_with(|free| free.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| Vec::with_capacity(self.buffer_init_cap));
        debug_assert_eq!(buf.len(), 0);
        PooledBuf(buf, self)
    }

    pub fn get_with<T: AsRef<[u8]>>(&'static self, content: T) -> PooledBuf {
        let mut buf = self.get();
        buf.as_mut().extend_from_slice(content.as_ref());
        buf
    }

    fn put(&self, mut buf: Vec<u8>) {
        buf.clear();
        buf.shrink_to(self.buffer_size_cap);
        // A thread being torn down has no list: the buffer is dropped.
        let _ = FREE.try_with(|free| {
            let mut free = free.borrow_mut();
            if free.len() < self.pool_cap {
                free.push(buf);
            }
        });
    }
}

impl Default for BufferPool {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug)]
pub struct PooledBuf(Vec<u8>, &'static BufferPool);

impl AsMut<Vec<u8>> for PooledBuf {
    fn as_mut(&mut self) -> &mut Vec<u8> {
        &mut self.0
    }
}

impl Deref for PooledBuf {
    type Target = [u8];

    fn deref(&self) -> &Self::Target {
        self.0.deref()
    }
}

impl Drop for PooledBuf {
    fn drop(&mut self) {
        self.1.put(take(&mut self.0))
    }
}
