package dev.baton.tcp;

import io.netty.channel.EventLoop;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The open connections of the whole process, one set per worker. A set is only touched on its
 * worker's thread, so the data path takes no lock; the total is an atomic for drain and status.
 */
public final class TcpConnections {
    private final Map<EventLoop, Set<TcpConnection>> perLoop = new IdentityHashMap<>();
    private final AtomicInteger count = new AtomicInteger();

    public TcpConnections(List<EventLoop> loops) {
        for (EventLoop l : loops) {
            perLoop.put(l, new LinkedHashSet<>());
        }
    }

    void add(TcpConnection c) {
        if (set(c.loop()).add(c)) {
            count.incrementAndGet();
        }
    }

    void remove(TcpConnection c) {
        if (set(c.loop()).remove(c)) {
            count.decrementAndGet();
        }
    }

    /** The connections of one worker; call on that worker's thread only. */
    public Set<TcpConnection> on(EventLoop loop) {
        return Collections.unmodifiableSet(set(loop));
    }

    /** Closes every connection (end of drain), each on its own worker. */
    public void closeAll() {
        for (Map.Entry<EventLoop, Set<TcpConnection>> e : perLoop.entrySet()) {
            e.getKey().submit(() -> {
                for (TcpConnection c : List.copyOf(e.getValue())) {
                    c.closeNow();
                }
            }).awaitUninterruptibly(5, java.util.concurrent.TimeUnit.SECONDS);
        }
    }

    public int count() {
        return count.get();
    }

    private Set<TcpConnection> set(EventLoop loop) {
        Set<TcpConnection> s = perLoop.get(loop);
        if (s == null) {
            throw new IllegalStateException("not a worker loop: " + loop);
        }
        return s;
    }
}
