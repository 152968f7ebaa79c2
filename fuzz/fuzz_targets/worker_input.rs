#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| gridcc_fuzz::worker_input::run(data));
