package dev.baton.config;

import java.time.Duration;

/** Tuning of a UDP proxy's flow table. */
public record UdpSettings(Duration flowIdleTimeout, int maxFlows, int receiveBuffer) {
}
