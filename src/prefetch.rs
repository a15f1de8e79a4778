//! A hint to the CPU to start fetching a value's cache line, for lookups
//! at random into a table too large to stay cached, whose next keys are
//! known a few steps ahead.

/// Start fetching the cache line `value` is in. It changes nothing the
/// program computes; on targets without a prefetch instruction it does
/// nothing.
#[inline(always)]
pub fn prefetch<T: ?Sized>(value: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        // SAFETY: SSE, which the intrinsic needs, is part of every x86_64
        // target; a prefetch reads nothing the program sees and cannot
        // fault, and the pointer comes from a live reference anyway.
        unsafe { _mm_prefetch::<_MM_HINT_T0>((value as *const T).cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = value;
}
