"""What the job dashboard reads (SPEC §9): overview figures, job throughput per minute and
the lists no admin endpoint offers. The web tier's `web/dashboard/` only renders them."""
