package dev.baton.udp;

import dev.baton.config.Addresses;
import dev.baton.upstream.Upstream;
import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.socket.DatagramPacket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.net.InetSocketAddress;
import java.util.ArrayDeque;

/**
 * One client of a UDP proxy: its address, and a socket connected to its upstream (the kernel
 * then accepts replies from that upstream only). Lives on the worker of the listening socket
 * the client's datagrams arrive on.
 */
public final class UdpFlow {
    private static final Logger log = LoggerFactory.getLogger(UdpFlow.class);
    /** Datagrams held while the upstream socket is being set up (a few microseconds). */
    private static final int MAX_PENDING = 64;

    private final UdpProxy proxy;
    private final UdpListenerHandler listener;
    private final InetSocketAddress client;
    private final Upstream upstream;
    private final long idleNanos;
    private Channel channel;
    private ArrayDeque<ByteBuf> pending = new ArrayDeque<>();
    private long lastSeen = System.nanoTime();
    private boolean dirty;
    private boolean closed;

    private UdpFlow(UdpProxy proxy, UdpListenerHandler listener, InetSocketAddress client, Upstream upstream) {
        this.proxy = proxy;
        this.listener = listener;
        this.client = client;
        this.upstream = upstream;
        this.idleNanos = proxy.config().udp().flowIdleTimeout().toNanos();
    }

    static UdpFlow open(UdpProxy proxy, UdpListenerHandler listener, InetSocketAddress client) {
        UdpProxy.State s = proxy.state();
        Upstream u = s.balancer().get(s.balancer().first(client), 0);
        UdpFlow flow = new UdpFlow(proxy, listener, client, u);
        proxy.stats().opened.increment();
        proxy.stats().active.incrementAndGet();
        u.opened();
        ChannelFuture f = s.upstreamTemplate().clone(listener.channel().eventLoop())
                .handler(flow.new FromUpstream())
                .connect(u.address());
        flow.channel = f.channel();
        f.addListener((ChannelFutureListener) done -> flow.connected(done));
        return flow;
    }

    public InetSocketAddress client() {
        return client;
    }

    public Channel upstreamChannel() {
        return channel;
    }

    private void connected(ChannelFuture f) {
        if (!f.isSuccess()) {
            proxy.stats().failed.increment();
            log.warn("proxy {}: flow {} -> {}: cannot open upstream socket: {}", proxy.name(),
                    Addresses.format(client), upstream, f.cause().getMessage());
            close();
            return;
        }
        f.channel().closeFuture().addListener(c -> close());
        ArrayDeque<ByteBuf> q = pending;
        pending = null;
        for (ByteBuf b : q) {
            channel.write(b, channel.voidPromise());
        }
        channel.flush();
    }

    /**
     * Queues a client datagram for the upstream (the caller flushes at the end of its read batch).
     *
     * @return true when this flow was not yet marked for that flush
     */
    boolean toUpstream(ByteBuf content) {
        lastSeen = System.nanoTime();
        if (closed) {
            return false;
        }
        if (pending != null) {
            if (pending.size() < MAX_PENDING) {
                pending.add(content.retain());
            } else {
                proxy.stats().dropped.increment();
            }
            return false;
        }
        if (!channel.isWritable()) {
            proxy.stats().dropped.increment();
            return false;
        }
        channel.write(content.retain(), channel.voidPromise());
        if (dirty) {
            return false;
        }
        dirty = true;
        return true;
    }

    void flushUpstream() {
        dirty = false;
        channel.flush();
    }

    boolean idleExpired(long now) {
        return now - lastSeen > idleNanos;
    }

    void close() {
        if (closed) {
            return;
        }
        closed = true;
        listener.removed(this);
        proxy.stats().active.decrementAndGet();
        upstream.closed();
        if (pending != null) {
            for (ByteBuf b : pending) {
                b.release();
            }
            pending.clear();
        }
        if (channel != null) {
            channel.close();
        }
    }

    @Override
    public String toString() {
        return proxy.name() + " " + Addresses.format(client) + " -> " + upstream;
    }

    /** Replies from the upstream, sent back to the client from the listening socket. */
    private final class FromUpstream extends ChannelInboundHandlerAdapter {
        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            DatagramPacket packet = (DatagramPacket) msg;
            lastSeen = System.nanoTime();
            listener.toClient(new DatagramPacket(packet.content(), client));
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            listener.flushClients();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // ICMP errors (port unreachable while the upstream restarts) arrive here; the flow stays.
            log.debug("flow {}: {}", UdpFlow.this, cause.getMessage());
        }
    }
}
