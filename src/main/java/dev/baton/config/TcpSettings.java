package dev.baton.config;

import java.time.Duration;

/** Tuning of a TCP proxy: its listeners and both legs of every connection. */
public record TcpSettings(
        int backlog,
        boolean nodelay,
        Duration connectTimeout,
        Duration idleTimeout,
        Keepalive keepalive,
        int fastOpen,
        Duration deferAccept,
        boolean freebind,
        boolean splice) {
}
