package dev.baton.config;

import java.time.Duration;

/** SO_KEEPALIVE with TCP_KEEPIDLE, TCP_KEEPINTVL and TCP_KEEPCNT. */
public record Keepalive(boolean enabled, Duration idle, Duration interval, int count) {
}
