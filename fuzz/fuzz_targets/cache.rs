#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gridcc_fuzz::cache::run(data));
