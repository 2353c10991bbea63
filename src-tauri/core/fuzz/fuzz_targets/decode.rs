//! Decoding a delivery never panics, and its event JSON is valid JSON carrying the body
//! byte for byte ([`hookscope_fuzz::decode_case`]).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| hookscope_fuzz::decode_case(data));
