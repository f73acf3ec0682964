package dev.baton.udp;

import dev.baton.config.Addresses;
import dev.baton.metrics.Throttle;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.DatagramPacket;
import io.netty.util.concurrent.ScheduledFuture;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Reads one UDP listening socket and owns its flow table (touched only on its worker's thread).
 * With SO_REUSEPORT the kernel hashes each client to one socket, so a client has one flow.
 * It serves one channel at a time; it is marked sharable only so that it can move, with its
 * flows, to a new channel on the same socket (io_uring, after a failed upgrade).
 */
@io.netty.channel.ChannelHandler.Sharable
public final class UdpListenerHandler extends ChannelInboundHandlerAdapter {
    private static final Logger log = LoggerFactory.getLogger(UdpListenerHandler.class);

    private final UdpRoute route;
    private final Map<InetSocketAddress, UdpFlow> flows = new HashMap<>();
    /** Flows written to in the current read batch, flushed once at its end. */
    private final List<UdpFlow> unflushed = new ArrayList<>();
    /** Datagrams forwarded in the current read batch: the first goes out at once. */
    private int batched;
    private Channel channel;
    /**
     * Datagrams of clients without a flow while the route defers, each copied out of its receive
     * buffer (a datagram arrives as a slice of a buffer of 64 KiB or more, which it would pin).
     * Bounded in count and bytes: a successor inherits a full socket buffer (up to
     * udp.receive-buffer, doubled by the kernel) and reads it while it defers.
     */
    private final java.util.ArrayDeque<DatagramPacket> deferred = new java.util.ArrayDeque<>();
    private static final int MAX_DEFERRED = 16384;
    private static final long MAX_DEFERRED_BYTES = 16L << 20;
    private long deferredBytes;
    /** Set during a takeover until the predecessor's flows are here (worker thread only). */
    private boolean deferring;
    private ScheduledFuture<?> sweeper;
    private final Throttle fullWarnings = new Throttle();
    private volatile int size;

    UdpListenerHandler(UdpRoute route) {
        this.route = route;
    }

    Channel channel() {
        return channel;
    }

    /** Flows open on this socket (read from any thread: an estimate for status and drain). */
    int size() {
        return size;
    }

    /** The flows of this socket; call on its worker's thread only. */
    public Collection<UdpFlow> flows() {
        return flows.values();
    }

    @Override
    public void channelActive(ChannelHandlerContext ctx) {
        channel = ctx.channel();
        scheduleSweep(ctx);
        ctx.fireChannelActive();
    }

    @Override
    public void handlerAdded(ChannelHandlerContext ctx) {
        channel = ctx.channel();
        if (channel.isActive() && channel.isRegistered()) {
            scheduleSweep(ctx);
        }
    }

    private void scheduleSweep(ChannelHandlerContext ctx) {
        if (sweeper != null) {
            return;
        }
        long idleMs = route.proxy().config().udp().flowIdleTimeout().toMillis();
        long period = Math.max(50, Math.min(idleMs / 4, 5000));
        sweeper = ctx.executor().scheduleAtFixedRate(this::sweep, period, period, TimeUnit.MILLISECONDS);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        DatagramPacket packet = (DatagramPacket) msg;
        InetSocketAddress sender = packet.sender();
        route.proxy().stats().datagramsIn.increment();
        UdpFlow flow = flows.get(sender);
        if (flow == null && deferring) {
            int n = packet.content().readableBytes();
            if (deferred.size() < MAX_DEFERRED && deferredBytes + n <= MAX_DEFERRED_BYTES) {
                ByteBuf copy = ctx.alloc().buffer(n);
                copy.writeBytes(packet.content());
                deferred.add(packet.replace(copy));
                deferredBytes += n;
            } else {
                route.proxy().stats().dropped.increment();
            }
            packet.release();
            return;
        }
        forward(packet, flow);
    }

    private void forward(DatagramPacket packet, UdpFlow flow) {
        InetSocketAddress sender = packet.sender();
        if (flow == null) {
            UdpProxy proxy = route.proxy();
            if (route.draining()) {
                proxy.stats().dropped.increment();
                packet.release();
                return;
            }
            int max = proxy.config().udp().maxFlows();
            if (proxy.stats().active.get() >= max) {
                proxy.stats().dropped.increment();
                packet.release();
                if (fullWarnings.pass()) {
                    log.warn("proxy {}: flow table full ({} flows); dropping datagrams of new clients such as {}",
                            proxy.name(), max, Addresses.format(sender));
                }
                return;
            }
            flow = UdpFlow.open(proxy, this, sender);
            if (flow.isClosed()) { // its socket could not be made: counted as failed, nothing to keep
                proxy.stats().dropped.increment();
                packet.release();
                return;
            }
            flows.put(sender, flow);
            size = flows.size();
        }
        if (flow.toUpstream(packet.content(), batched++ == 0)) {
            unflushed.add(flow);
        }
        packet.release();
    }

    /**
     * Starts or ends deferring new flows. Runs as a task on this socket's worker, so it takes
     * effect in order with the flows adopted before it (also tasks on that worker).
     */
    void defer(boolean on) {
        channel.eventLoop().execute(() -> {
            deferring = on;
            if (!on) {
                DatagramPacket p;
                while ((p = deferred.poll()) != null) {
                    forward(p, flows.get(p.sender()));
                }
                deferredBytes = 0;
                flushUpstreams();
            }
        });
    }

    @Override
    public void channelReadComplete(ChannelHandlerContext ctx) {
        flushUpstreams();
    }

    private void flushUpstreams() {
        batched = 0;
        for (int i = 0; i < unflushed.size(); i++) {
            unflushed.get(i).flushUpstream();
        }
        unflushed.clear();
    }

    /**
     * Sends an upstream's reply to the client now, from the listening socket, where the transport
     * can and nothing is queued before it (epoll: no copy, no pipeline); false if it is to be
     * queued with {@link #toClient}.
     */
    boolean sendNow(ByteBuf content, InetSocketAddress client) {
        try {
            return route.proxy().transport().sendNow(channel, content, client);
        } catch (java.io.IOException e) {
            log.debug("udp listener {}: {}", channel.localAddress(), e.getMessage());
            return true; // lost, as a queued send that failed would be
        }
    }

    /** Queues an upstream's reply to the client, from the listening address (sent by {@link #flushClients}). */
    void toClient(DatagramPacket reply) {
        channel.write(reply, channel.voidPromise());
    }

    void flushClients() {
        channel.flush();
    }

    void adopted(UdpFlow flow) {
        UdpFlow old = flows.put(flow.client(), flow);
        if (old != null) {
            old.close();
            flows.put(flow.client(), flow);
        }
        size = flows.size();
    }

    void removed(UdpFlow flow) {
        flows.remove(flow.client(), flow);
        size = flows.size();
    }

    private void sweep() {
        long now = System.nanoTime();
        List<UdpFlow> idle = null;
        for (UdpFlow f : flows.values()) {
            if (f.idleExpired(now)) {
                if (idle == null) {
                    idle = new ArrayList<>();
                }
                idle.add(f);
            }
        }
        if (idle != null) {
            for (UdpFlow f : idle) {
                log.debug("flow {} idle, closing", f);
                f.close();
            }
        }
    }

    @Override
    public void channelInactive(ChannelHandlerContext ctx) {
        if (sweeper != null) {
            sweeper.cancel(false);
        }
        DatagramPacket p;
        while ((p = deferred.poll()) != null) {
            p.release();
        }
        deferredBytes = 0;
        for (UdpFlow f : new ArrayList<>(flows.values())) {
            f.close();
        }
        ctx.fireChannelInactive();
    }

    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        log.debug("udp listener {}: {}", ctx.channel().localAddress(), cause.getMessage());
    }
}
