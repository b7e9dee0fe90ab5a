//! Helpers shared by the converter's integration tests.

use std::io::Read;

/// A reader that hands out at most `k` bytes per `read` call, to check that results do not
/// depend on how the input is chunked (DESIGN.md section 3).
pub struct Chunked<'a> {
    /// Bytes not read yet.
    pub data: &'a [u8],
    /// Most bytes per call.
    pub k: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.k.min(buf.len()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        buf[..n].copy_from_slice(head);
        self.data = rest;
        Ok(n)
    }
}
