package dev.baton.upstream;

import dev.baton.config.Addresses;

import java.net.InetSocketAddress;
import java.util.concurrent.atomic.AtomicInteger;

/** One upstream address and the connections (or flows) currently open to it. */
public final class Upstream {
    private final InetSocketAddress address;
    private final AtomicInteger active = new AtomicInteger();

    public Upstream(InetSocketAddress address) {
        this.address = address;
    }

    public InetSocketAddress address() {
        return address;
    }

    public int active() {
        return active.get();
    }

    public void opened() {
        active.incrementAndGet();
    }

    public void closed() {
        active.decrementAndGet();
    }

    @Override
    public String toString() {
        return Addresses.format(address);
    }
}
