#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gridcc_fuzz::terminal::run(data));
