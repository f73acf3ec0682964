package dev.baton.tcp;

import io.netty.channel.EventLoop;
import io.netty.util.concurrent.FastThreadLocal;

import java.util.ArrayList;
import java.util.concurrent.TimeUnit;

/**
 * Keepalive for raw upstream sockets once their connection has lived about a second. Setting it
 * takes four setsockopt(2) calls, some 6% of a short connection's CPU (async-profiler, new
 * connections over loopback), and keepalive does nothing for a connection that ends within its
 * idle time (a second at least, 60 s by default): probes start at most a second later than they
 * would have. One list per worker, one timer per worker while the list has connections; a
 * connection that moves onto channels (a stream, an upgrade) gets it then.
 */
final class KeepaliveLater {
    private static final FastThreadLocal<KeepaliveLater> PER_WORKER = new FastThreadLocal<>() {
        @Override
        protected KeepaliveLater initialValue() {
            return new KeepaliveLater();
        }
    };

    private ArrayList<TcpConnection> due = new ArrayList<>();
    private boolean scheduled;

    /** {@code c}'s keepalive is owed: {@link TcpConnection#payKeepalive} runs in a second or so. Call on {@code loop}. */
    static void add(EventLoop loop, TcpConnection c) {
        KeepaliveLater k = PER_WORKER.get();
        k.due.add(c);
        if (!k.scheduled) {
            k.scheduled = true;
            loop.schedule(k::run, 1, TimeUnit.SECONDS);
        }
    }

    private void run() {
        scheduled = false;
        for (TcpConnection c : due) {
            c.payKeepalive();  // nothing for one that closed or moved meanwhile
        }
        // a burst's list is not kept at its size
        due = due.size() > 4096 ? new ArrayList<>() : due;
        due.clear();
    }
}
