"""What the actors run on, free of driver decisions: clocks, timers, the pooled dispatcher,
the HSM engine, rate-limited logging and the gateway's intake horizon."""
