"""Wire doubles of the platforms' servers (a local Slack Web API and Discord gateway), for tests and benchmarks."""
