package dev.baton.socket;

import io.netty.channel.EventLoop;
import io.netty.channel.IoEventLoop;
import io.netty.channel.MultiThreadIoEventLoopGroup;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.EventExecutor;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * The worker event loops. Worker i owns socket i of every listener; whatever it accepts, and the
 * upstream connection made for it, stays on worker i.
 */
public final class Workers implements AutoCloseable {
    private final Transport transport;
    private final MultiThreadIoEventLoopGroup group;
    private final List<EventLoop> loops;

    public Workers(Transport transport, int count) {
        this.transport = transport;
        this.group = new MultiThreadIoEventLoopGroup(count, new DefaultThreadFactory("worker"),
                transport.ioHandlerFactory());
        List<EventLoop> l = new ArrayList<>(count);
        for (EventExecutor e : group) {
            l.add((IoEventLoop) e);
        }
        this.loops = List.copyOf(l);
    }

    public Transport transport() {
        return transport;
    }

    public MultiThreadIoEventLoopGroup group() {
        return group;
    }

    public int count() {
        return loops.size();
    }

    public EventLoop loop(int index) {
        return loops.get(Math.floorMod(index, loops.size()));
    }

    public List<EventLoop> loops() {
        return loops;
    }

    /** Waits until every worker has run the tasks queued before this call (closes in flight). */
    public void settle() {
        for (int round = 0; round < 2; round++) {
            for (EventLoop l : loops) {
                if (!l.isShuttingDown()) {
                    l.submit(() -> { }).awaitUninterruptibly(1, TimeUnit.SECONDS);
                }
            }
        }
    }

    @Override
    public void close() {
        group.shutdownGracefully(0, 2, TimeUnit.SECONDS).syncUninterruptibly();
    }
}
