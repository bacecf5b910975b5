//! The allocator of the zoo's binaries (`zoo-train`, `cargo xtask`): mimalloc, keeping the
//! memory it frees for reuse.
//!
//! A forward allocates its activations afresh and frees them as it goes. The system allocator
//! hands large buffers back to the kernel at once, and mimalloc by default a second after they
//! are freed (its `purge_delay`, 1000 ms in mimalloc 3): either way later forwards fault pages
//! back in, each one zeroed by the kernel (`clear_page_erms`, 8% of ConvNeXt-T's batch-8 forward on Flex). Measured
//! by `cargo xtask bench` (Flex, 2 threads, batch 8, two A/B pairs): mimalloc over the system
//! allocator, EfficientNet-B0 58-62 -> 69-72 img/s, DenseNet-121 23.0-24.4 -> 26.0-28.0,
//! ResNet-50 28.2-30.1 -> 31.4-33.0; then never purging, ConvNeXt-T 20.3 -> 22.2-22.4 img/s.
//!
//! The libraries leave the allocator to the application; a program of yours gets the same with
//! the two lines below in its `main.rs` and [`keep_freed_memory`] first thing in `main`.
//!
//! ```ignore
//! #[global_allocator]
//! static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
//! ```

/// mimalloc's `mi_option_purge_delay` (`mimalloc.h`; its Rust bindings name the options around
/// it but not this one). The test checks it against the option's documented default.
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Tells mimalloc never to hand freed memory back to the operating system, so that each forward
/// reuses the pages of the last one: the process keeps its peak memory. Does nothing to a
/// program whose global allocator is not mimalloc.
pub fn keep_freed_memory() {
    // SAFETY: setting an option is thread-safe and valid at any time (mimalloc reads the
    // purge delay each time it would purge).
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Option 15 is the purge delay: its documented default is 10 (ms), and no other option
    /// near it defaults to 10.
    #[test]
    fn purge_delay_is_option_15() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading an option is always valid.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(default, 1000);
        for neighbour in [14, 16] {
            // SAFETY: as above.
            assert_ne!(unsafe { libmimalloc_sys::mi_option_get(neighbour) }, 1000);
        }
    }
}
