package dev.baton.udp;

import dev.baton.config.Addresses;
import dev.baton.config.ProxyProtocol;
import dev.baton.os.DescriptorLimit;
import dev.baton.proxyprotocol.ProxyHeader;
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
import java.util.ArrayList;
import java.util.List;
import dev.baton.socket.Transport;
import io.netty.util.concurrent.Future;

/**
 * One client of a UDP proxy: its address, and a socket connected to its upstream (the kernel
 * then accepts replies from that upstream only). Lives on the worker of the listening socket
 * the client's datagrams arrive on.
 */
public final class UdpFlow {
    private static final Logger log = LoggerFactory.getLogger(UdpFlow.class);
    /** Datagrams held while the upstream socket is being set up (a few microseconds). */
    private static final int MAX_PENDING = 64;

    /**
     * A flow's write buffer holds one read batch of the largest datagrams (16 x 64 KiB) before it
     * refuses more: a listener's batch is written, then flushed once. On io_uring a flushed send
     * stays queued until its completion, so with Netty's default (64 KiB) the second large
     * datagram of a batch for one client found the buffer full and was dropped.
     */
    static final io.netty.channel.WriteBufferWaterMark WRITES = new io.netty.channel.WriteBufferWaterMark(
            dev.baton.socket.Transport.DATAGRAMS_PER_READ * dev.baton.socket.SocketRegistry.MAX_DATAGRAM / 2,
            dev.baton.socket.Transport.DATAGRAMS_PER_READ * dev.baton.socket.SocketRegistry.MAX_DATAGRAM);

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
    /** Being handed to a successor: replies read meanwhile are carried over. */
    private boolean handingOver;
    private List<byte[]> carried;
    /** Adopted socket: Netty does not know it is connected, so writes carry the address. */
    private boolean addressed;
    /** The PROXY protocol v2 header put ahead of every datagram to the upstream, or null. */
    private final byte[] header;

    private UdpFlow(UdpProxy proxy, UdpProxy.State state, UdpListenerHandler listener, InetSocketAddress client,
                    Upstream upstream) {
        this.proxy = proxy;
        this.listener = listener;
        this.client = client;
        this.upstream = upstream;
        this.idleNanos = proxy.config().udp().flowIdleTimeout().toNanos();
        this.header = header(state.config().proxyProtocol().send(), listener, client);
    }

    /**
     * Every datagram carries the header, not just a flow's first: UDP may lose or reorder that
     * one, and a backend can then take each datagram on its own. It names the listening socket's
     * address as the destination (for a wildcard listener, 0.0.0.0 or ::: which local address
     * a datagram was sent to is not known to the socket). A flow adopted in an upgrade builds the
     * same header from the same client and listening socket, so nothing needs to move with it.
     */
    private static byte[] header(ProxyProtocol version, UdpListenerHandler listener, InetSocketAddress client) {
        if (version == ProxyProtocol.OFF) {
            return null;
        }
        return ProxyHeader.bytes(version, false, client, (InetSocketAddress) listener.channel().localAddress());
    }

    static UdpFlow open(UdpProxy proxy, UdpListenerHandler listener, InetSocketAddress client) {
        UdpProxy.State s = proxy.state();
        Upstream u = s.balancer().get(s.balancer().first(client), 0);
        UdpFlow flow = new UdpFlow(proxy, s, listener, client, u);
        proxy.stats().opened.increment();
        proxy.stats().active.incrementAndGet();
        u.opened();
        ChannelFuture f = s.upstreamTemplate(u.address()).clone(listener.channel().eventLoop())
                .handler(flow.new FromUpstream())
                .connect(u.address());
        flow.channel = f.channel();
        if (f.isDone()) {
            // Here, on the worker: a socket that could not even be made (out of descriptors) fails
            // a future of Netty's global executor, whose listeners would run on another thread.
            flow.connected(f);
        } else {
            f.addListener((ChannelFutureListener) done -> flow.connected(done));
        }
        return flow;
    }

    /** Closed, or failed to open: the listening socket keeps no entry for it. */
    boolean isClosed() {
        return closed;
    }

    public InetSocketAddress client() {
        return client;
    }

    public Channel upstreamChannel() {
        return channel;
    }

    private void connected(ChannelFuture f) {
        if (!f.isSuccess()) {
            if (closed) {
                return; // closed before its socket was ready (the listener went, an idle sweep): nothing failed
            }
            proxy.stats().failed.increment();
            if (DescriptorLimit.reached(f.cause())) {
                DescriptorLimit.report("proxy " + proxy.name()
                        + " cannot open sockets for new UDP flows; their datagrams are dropped");
            } else {
                log.warn("proxy {}: flow {} -> {}: cannot open upstream socket: {}", proxy.name(),
                        Addresses.format(client), upstream, f.cause().toString());
            }
            close();
            return;
        }
        f.channel().closeFuture().addListener(c -> close());
        ArrayDeque<ByteBuf> q = pending;
        pending = null;
        for (ByteBuf b : q) {
            channel.write(addressed ? new DatagramPacket(b, upstream.address()) : b, channel.voidPromise());
        }
        proxy.stats().datagramsOut.add(q.size());
        channel.flush();
    }

    /**
     * Sends a client datagram to the upstream: at once if {@code now} and the transport can (the
     * first datagram of a read batch: request/response traffic brings one per batch), else queued
     * (the caller flushes at the end of its read batch, so the rest of a batch goes out with one
     * sendmmsg). A flow that puts a PROXY protocol header ahead of each datagram always queues.
     *
     * @return true when this flow was not yet marked for that flush
     */
    boolean toUpstream(ByteBuf content, boolean now) {
        lastSeen = System.nanoTime();
        if (closed) {
            return false;
        }
        if (pending != null) {
            ByteBuf b = pending.size() < MAX_PENDING ? outgoing(content) : null;
            if (b != null) {
                pending.add(b);
            } else {
                proxy.stats().dropped.increment();
            }
            return false;
        }
        if (now && header == null && writeNow(content)) {
            proxy.stats().datagramsOut.increment();
            return false;
        }
        if (!channel.isWritable()) {
            channel.flush(); // this read batch filled the write buffer: send it, then see if there is room
        }
        ByteBuf b = channel.isWritable() ? outgoing(content) : null;
        if (b == null) {
            proxy.stats().dropped.increment();
            return false;
        }
        channel.write(addressed ? new DatagramPacket(b, upstream.address()) : b, channel.voidPromise());
        proxy.stats().datagramsOut.increment();
        if (dirty) {
            return false;
        }
        dirty = true;
        return true;
    }

    /** Sends {@code content} on the upstream socket now, past the channel: false if it is to be queued. */
    private boolean writeNow(ByteBuf content) {
        try {
            return proxy.transport().writeNow(channel, content);
        } catch (java.io.IOException e) {
            log.debug("flow {}: {}", this, e.getMessage());
            return true; // lost, as a queued send that failed would be
        }
    }

    /** The datagram to send for {@code content}: itself, or behind the header (null if then too large). */
    private ByteBuf outgoing(ByteBuf content) {
        if (header == null) {
            return copy(content);
        }
        int max = upstream.address().getAddress() instanceof java.net.Inet6Address ? 65527 : 65507;
        int size = header.length + content.readableBytes();
        if (size > max) {
            log.debug("flow {}: dropping a {}-byte datagram: no room for the PROXY protocol header", this,
                    content.readableBytes());
            return null;
        }
        return channel.alloc().directBuffer(size).writeBytes(header)
                .writeBytes(content, content.readerIndex(), content.readableBytes());
    }

    /**
     * A datagram's bytes in a buffer of their own size: the one read into is the worker's receive
     * buffer, read into again next (see DatagramReceiveBuffer).
     */
    private ByteBuf copy(ByteBuf content) {
        int n = content.readableBytes();
        return channel.alloc().directBuffer(n, n).writeBytes(content, content.readerIndex(), n);
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
        if (channel != null && channel.isOpen()) { // not the stand-in for a socket never made
            channel.close();
        }
    }

    // ---- handoff to a successor process -------------------------------------------------

    /** Connected and open: this flow can move whole. */
    public boolean movable() {
        return !closed && pending == null && channel.isActive();
    }

    /** Stops reading replies and takes the upstream socket off this worker (call on the worker). */
    public Future<Void> beginHandoff() {
        handingOver = true; // from here, replies read are carried over
        channel.flush();
        return proxy.transport().release(channel);
    }

    /**
     * After {@link #beginHandoff()}: the flow leaves this process's books, its socket left open.
     * Datagrams not yet sent either way (a send still queued, or cancelled by the release) go
     * along: {@code repliesQueued} are this client's replies taken from the listening socket.
     */
    public Snapshot snapshot(List<byte[]> repliesQueued) {
        closed = true;
        listener.removed(this);
        proxy.stats().active.decrementAndGet();
        upstream.closed();
        List<byte[]> replies = new ArrayList<>(repliesQueued);
        if (carried != null) {
            replies.addAll(carried);
            carried = null;
        }
        List<byte[]> toUpstream = new ArrayList<>();
        drainQueued(channel, (to, bytes) -> toUpstream.add(bytes));
        return new Snapshot(proxy.name(), client, upstream.address(), Transport.fd(channel), toUpstream, replies);
    }

    /**
     * Takes every datagram still queued on a released channel (with io_uring a cancelled send
     * stays queued) and hands each to {@code sink} with its recipient (null when connected).
     */
    public static void drainQueued(Channel ch, java.util.function.BiConsumer<InetSocketAddress, byte[]> sink) {
        io.netty.channel.ChannelOutboundBuffer ob = ch.unsafe().outboundBuffer();
        if (ob == null) {
            return;
        }
        ob.addFlush();
        Object m;
        while ((m = ob.current()) != null) {
            ByteBuf b = m instanceof DatagramPacket p ? p.content() : m instanceof ByteBuf bb ? bb : null;
            if (b != null) {
                byte[] bytes = new byte[b.readableBytes()];
                b.getBytes(b.readerIndex(), bytes);
                sink.accept(m instanceof DatagramPacket p ? p.recipient() : null, bytes);
            }
            ob.remove();
        }
    }

    /** A flow as it moves between processes. */
    public record Snapshot(String proxy, InetSocketAddress client, InetSocketAddress upstream, int fd,
                           List<byte[]> toUpstream, List<byte[]> replies) {
    }

    /**
     * In the successor: takes over a flow whose upstream socket is already wrapped in a channel
     * of this process's transport; it joins the flow table of {@code listener}'s socket.
     */
    public static void adopt(UdpProxy proxy, UdpListenerHandler listener, Channel channel, Snapshot s) {
        Upstream target = proxy.state().balancer().find(s.upstream());
        if (target == null) {
            target = new Upstream(s.upstream());
        }
        UdpFlow flow = new UdpFlow(proxy, proxy.state(), listener, s.client(), target);
        flow.channel = channel;
        channel.config().setRecvByteBufAllocator(proxy.transport().flowReads());
        channel.config().setAllocator(io.netty.buffer.PooledByteBufAllocator.DEFAULT);
        channel.config().setWriteBufferWaterMark(WRITES);
        proxy.stats().opened.increment();
        proxy.stats().active.incrementAndGet();
        target.opened();
        listener.adopted(flow);
        channel.pipeline().addLast(flow.new FromUpstream());
        Channel listenerChannel = listener.channel();
        listenerChannel.eventLoop().register(channel).addListener(r -> {
            if (!r.isSuccess()) {
                flow.close();
                return;
            }
            // The socket is connected in the kernel, but Netty does not know: address each datagram.
            flow.addressed = true;
            flow.connected(r instanceof ChannelFuture cf ? cf : channel.newSucceededFuture());
            for (byte[] out : s.toUpstream()) {
                channel.write(new DatagramPacket(io.netty.buffer.Unpooled.wrappedBuffer(out), s.upstream()),
                        channel.voidPromise());
            }
            channel.flush();
            for (byte[] reply : s.replies()) {
                listener.toClient(new DatagramPacket(io.netty.buffer.Unpooled.wrappedBuffer(reply), s.client()));
            }
            listener.flushClients();
        });
    }

    @Override
    public String toString() {
        return proxy.name() + " " + Addresses.format(client) + " -> " + upstream;
    }

    /** Replies from the upstream, sent back to the client from the listening socket. */
    private final class FromUpstream extends ChannelInboundHandlerAdapter {
        /** A reply of this read was queued on the listener: the rest of the read follow it, in order. */
        private boolean queued;

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            DatagramPacket packet = (DatagramPacket) msg;
            lastSeen = System.nanoTime();
            if (handingOver) {
                if (carried == null) {
                    carried = new ArrayList<>();
                }
                byte[] b = new byte[packet.content().readableBytes()];
                packet.content().readBytes(b);
                packet.release();
                carried.add(b);
                return;
            }
            if (queued || !listener.sendNow(packet.content(), client)) {
                listener.toClient(new DatagramPacket(copy(packet.content()), client));
                queued = true;
            }
            packet.release();
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            if (handingOver || !queued) {
                return;
            }
            queued = false;
            listener.flushClients();
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            // ICMP errors (port unreachable while the upstream restarts) arrive here; the flow stays.
            log.debug("flow {}: {}", UdpFlow.this, cause.getMessage());
        }
    }
}
