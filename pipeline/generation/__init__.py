"""Image generation without Django: the offline demo generator (`demo`), diffusers pipelines
(`diffusers_backend`) and tiny random pipelines for tests and benchmarks (`testing`)."""
