//! Any bytes given to the image analyser must come back as an analysis or an error, never a
//! panic, a hang or an allocation the size of a declared (not actual) length.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = headroom_inspect::analyze(&data[..], &Default::default());
});
