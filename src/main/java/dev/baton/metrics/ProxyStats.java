package dev.baton.metrics;

import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;

/** Counters of one proxy; they survive a reload that keeps the proxy. */
public final class ProxyStats {
    /** Connections accepted, or UDP flows opened. */
    public final LongAdder opened = new LongAdder();
    /** Connections closed because no upstream could be reached, or flows that could not open. */
    public final LongAdder failed = new LongAdder();
    /** UDP datagrams dropped (flow table full, upstream not connected yet and queue full). */
    public final LongAdder dropped = new LongAdder();
    /** UDP datagrams read from clients, and written towards upstreams. */
    public final LongAdder datagramsIn = new LongAdder();
    public final LongAdder datagramsOut = new LongAdder();
    /** Connections from a trusted source closed for a missing or malformed PROXY protocol header. */
    public final LongAdder badProxyHeader = new LongAdder();
    /** Connections or flows open now. */
    public final AtomicLong active = new AtomicLong();
}
