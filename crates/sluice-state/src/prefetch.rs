//! A hint to the CPU to start loading a cache line that will be read soon.
//!
//! Keyed state lookups are random accesses into tables larger than the CPU caches; by
//! prefetching the slots of the next records of a batch while processing the current one,
//! their cache misses overlap instead of adding up.

/// Starts loading the cache line holding `value` into all cache levels. Never faults and
/// has no effect on program semantics.
#[inline(always)]
#[allow(unsafe_code)]
pub(crate) fn prefetch_read<T>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache; it never faults, even on an invalid
    // address, and `value` is a valid reference. SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
            (value as *const T).cast::<i8>(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
