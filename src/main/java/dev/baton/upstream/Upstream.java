package dev.baton.upstream;

import dev.baton.config.Addresses;

import java.net.InetSocketAddress;
import java.util.concurrent.atomic.AtomicInteger;

/** One upstream address and the connections (or flows) currently open to it. */
public final class Upstream {
    private final InetSocketAddress address;
    private final AtomicInteger active = new AtomicInteger();
    /**
     * Whether connects to this upstream complete inside connect(2) (loopback, same-host bridges),
     * so a TCP connection may connect in place; cleared when one does not, set again when one
     * made the usual way is found already complete.
     */
    private volatile boolean connectsInPlace = true;

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

    public boolean connectsInPlace() {
        return connectsInPlace;
    }

    /** False when a connect to this upstream took a round trip, true when one was found complete at once again. */
    public void connectsInPlace(boolean yes) {
        connectsInPlace = yes;
    }

    @Override
    public String toString() {
        return Addresses.format(address);
    }
}
