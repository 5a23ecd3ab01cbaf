//! A hint to the CPU to start loading a cache line that will be read soon.
//!
//! Keyed state lookups are random accesses into tables larger than the CPU caches; by
//! prefetching the slots of the next records of a batch while processing the current one,
//! their cache misses overlap instead of adding up.

use std::any::Any;
use std::sync::Arc;

/// Starts loading the cache line holding `value` into all cache levels. Never faults and
/// has no effect on program semantics.
#[inline(always)]
pub(crate) fn prefetch_read<T>(value: &T) {
    prefetch_address((value as *const T).cast::<u8>());
}

#[inline(always)]
#[allow(unsafe_code)]
fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` only hints the cache; it never dereferences in a way that can
    // fault, whatever the address. SSE is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(address.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}

/// Starts loading the out-of-line bytes of a key (a `String`'s text, say), which a key
/// comparison reads after the slot itself. Keys of other types are stored inline in the
/// slot and need nothing. The type tests are constants in each instantiation.
#[inline(always)]
pub(crate) fn prefetch_key_data<K: 'static>(key: &K) {
    let key = key as &dyn Any;
    if let Some(s) = key.downcast_ref::<String>() {
        prefetch_address(s.as_ptr());
    } else if let Some(s) = key.downcast_ref::<Box<str>>() {
        prefetch_address(s.as_ptr());
    } else if let Some(s) = key.downcast_ref::<Arc<str>>() {
        prefetch_address(s.as_ptr());
    } else if let Some(v) = key.downcast_ref::<Vec<u8>>() {
        prefetch_address(v.as_ptr());
    }
}
