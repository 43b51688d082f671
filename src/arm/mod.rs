//! ARM access: the request policy (rate limit, retries, host guard, cache, counters) on
//! azure_core's pipeline, and paged lists kept as raw JSON (issue 4). Placeholder.
