package dev.baton.tcp;

import dev.baton.config.Addresses;
import dev.baton.upstream.Upstream;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.ConnectTimeoutException;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.timeout.IdleStateEvent;
import io.netty.util.ReferenceCountUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;

/**
 * One proxied connection: the client's socket and the upstream socket, both on one worker, so
 * no field here is ever touched by two threads.
 *
 * <p>Bytes are relayed as they arrive. When a side cannot take more, the other side stops
 * reading until it can (backpressure both ways, nothing buffered without bound). A FIN from one
 * side becomes a FIN to the other once what came before it is written; the pair closes when
 * both directions are done. An error or reset on one side resets the other (SO_LINGER 0).
 */
public final class TcpConnection {
    private static final Logger log = LoggerFactory.getLogger(TcpConnection.class);

    private final TcpProxy proxy;
    private final TcpProxy.State state;
    private final Channel client;
    private final EventLoop loop;
    private Channel upstream;
    private Upstream target;
    private int firstPick;
    private String failures;
    /** Direction client->upstream (c2u) and upstream->client (u2c): input seen FIN, output sent FIN. */
    private boolean c2uInputDone;
    private boolean c2uOutputDone;
    private boolean u2cInputDone;
    private boolean u2cOutputDone;
    private boolean finished;
    /**
     * Client bytes and FIN read before the upstream is connected. With AUTO_READ off NIO reads
     * nothing, but epoll and io_uring still read once when a FIN (RDHUP) arrives; those bytes
     * are held here until the upstream is connected instead of being dropped.
     */
    private java.util.ArrayDeque<Object> early;
    private boolean earlyInputShutdown;

    TcpConnection(TcpProxy proxy, TcpProxy.State state, Channel client) {
        this.proxy = proxy;
        this.state = state;
        this.client = client;
        this.loop = client.eventLoop();
    }

    EventLoop loop() {
        return loop;
    }

    public Channel client() {
        return client;
    }

    public Channel upstream() {
        return upstream;
    }

    void start() {
        proxy.connections().add(this);
        proxy.stats().opened.increment();
        proxy.stats().active.incrementAndGet();
        client.pipeline().addLast(new Relay(true));
        client.closeFuture().addListener(f -> sideClosed());
        firstPick = state.balancer().first((InetSocketAddress) client.remoteAddress());
        connect(0);
    }

    private void connect(int attempt) {
        Upstream u = state.balancer().get(firstPick, attempt);
        ChannelFuture f = state.upstreamTemplate().clone(loop)
                .handler(new Relay(false))
                .connect(u.address());
        f.addListener((ChannelFutureListener) done -> {
            if (done.isSuccess()) {
                connected(done.channel(), u);
                return;
            }
            String why = u + ": " + reason(done.cause());
            failures = failures == null ? why : failures + "; " + why;
            if (!client.isActive()) {
                return;
            }
            if (attempt + 1 < state.balancer().attempts()) {
                connect(attempt + 1);
            } else {
                releaseEarly();
                proxy.stats().failed.increment();
                log.warn("proxy {}: client {}: no upstream reachable ({})", proxy.name(),
                        Addresses.format((InetSocketAddress) client.remoteAddress()), failures);
                client.close();
            }
        });
    }

    private void connected(Channel up, Upstream u) {
        if (!client.isActive()) {
            releaseEarly();
            up.close();
            return;
        }
        upstream = up;
        target = u;
        u.opened();
        up.closeFuture().addListener(f -> sideClosed());
        if (early != null) {
            for (Object m; (m = early.poll()) != null; ) {
                up.write(m, up.voidPromise());
            }
            early = null;
            up.flush();
        }
        if (earlyInputShutdown) {
            earlyInputShutdown = false;
            inputShutdown(true);
        }
        setReading(client, true);
        setReading(up, true);
    }

    /**
     * Turns reading on or off. A side whose FIN already arrived has nothing left to read; on
     * epoll, asking for reads on it again fails (epoll_ctl ENOENT) and kills the connection.
     */
    private static void setReading(Channel ch, boolean on) {
        if (on && ch instanceof DuplexChannel d && d.isInputShutdown()) {
            return;
        }
        ch.config().setAutoRead(on);
    }

    private void releaseEarly() {
        if (early != null) {
            for (Object m; (m = early.poll()) != null; ) {
                ReferenceCountUtil.release(m);
            }
            early = null;
        }
    }

    /** Accounts the connection as gone once both sockets are closed. */
    private void sideClosed() {
        if (finished || client.isOpen() || (upstream != null && upstream.isOpen())) {
            return;
        }
        finished = true;
        if (target != null) {
            target.closed();
        }
        proxy.connections().remove(this);
        proxy.stats().active.decrementAndGet();
    }

    private Channel peerOf(boolean fromClient) {
        return fromClient ? upstream : client;
    }

    private void inputShutdown(boolean fromClient) {
        if (fromClient) {
            c2uInputDone = true;
        } else {
            u2cInputDone = true;
        }
        Channel peer = peerOf(fromClient);
        if (peer == null || !peer.isActive()) {
            closeBoth();
            return;
        }
        // FIN travels after every byte read before it.
        peer.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener((ChannelFutureListener) f -> {
            if (!f.isSuccess()) {
                closeBoth();
                return;
            }
            ((DuplexChannel) peer).shutdownOutput().addListener(g -> {
                if (fromClient) {
                    c2uOutputDone = true;
                } else {
                    u2cOutputDone = true;
                }
                if (!g.isSuccess() || (c2uInputDone && c2uOutputDone && u2cInputDone && u2cOutputDone)) {
                    closeBoth();
                }
            });
        });
    }

    /** Graceful close: what is queued is written first. */
    private void closeBoth() {
        closeAfterFlush(client);
        if (upstream != null) {
            closeAfterFlush(upstream);
        }
    }

    private static void closeAfterFlush(Channel ch) {
        if (ch.isActive()) {
            ch.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener(ChannelFutureListener.CLOSE);
        } else {
            ch.close();
        }
    }

    /** Abortive close of one side: the peer sees a reset, as the proxy's other side did. */
    private static void reset(Channel ch) {
        if (ch != null && ch.isOpen()) {
            try {
                ch.config().setOption(ChannelOption.SO_LINGER, 0);
            } catch (RuntimeException ignored) {
                // already closing; a plain close is all that is left
            }
            ch.close();
        }
    }

    private static String reason(Throwable cause) {
        if (cause instanceof ConnectTimeoutException) {
            return "connect timed out";
        }
        String m = cause.getMessage();
        if (m != null && m.contains("refused")) {
            return "connection refused";
        }
        if (cause instanceof ConnectException || cause instanceof IOException) {
            return m != null ? m.replaceFirst("^.*?: ", "") : cause.getClass().getSimpleName();
        }
        return String.valueOf(cause);
    }

    /** The handler on each side; {@code fromClient} says which side it reads. */
    private final class Relay extends ChannelInboundHandlerAdapter {
        private final boolean fromClient;

        Relay(boolean fromClient) {
            this.fromClient = fromClient;
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            Channel peer = peerOf(fromClient);
            if (fromClient && peer == null && client.isActive()) {
                if (early == null) {
                    early = new java.util.ArrayDeque<>();
                }
                early.add(msg);
                return;
            }
            if (peer == null || !peer.isActive()) {
                ReferenceCountUtil.release(msg);
                return;
            }
            peer.write(msg, peer.voidPromise());
            if (!peer.isWritable()) {
                ctx.channel().config().setAutoRead(false);
            }
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            Channel peer = peerOf(fromClient);
            if (peer != null) {
                peer.flush();
            }
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            // This side drained (or filled): let the side that writes into it read again (or stop).
            Channel peer = peerOf(fromClient);
            if (peer != null && peer.isActive()) {
                setReading(peer, ctx.channel().isWritable());
            }
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                if (fromClient && upstream == null && client.isActive()) {
                    earlyInputShutdown = true; // forwarded once the upstream is connected
                    return;
                }
                inputShutdown(fromClient);
            } else if (evt instanceof IdleStateEvent) {
                log.debug("proxy {}: closing idle connection from {}", proxy.name(), client.remoteAddress());
                closeBoth();
            } else {
                ctx.fireUserEventTriggered(evt);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            Channel peer = peerOf(fromClient);
            if (peer != null) {
                closeAfterFlush(peer);
            }
        }

        @Override
        public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
            if (cause instanceof IOException) {
                log.debug("proxy {}: {} side failed: {}", proxy.name(), fromClient ? "client" : "upstream",
                        cause.getMessage());
            } else {
                log.warn("proxy {}: unexpected error on the {} side", proxy.name(),
                        fromClient ? "client" : "upstream", cause);
            }
            reset(peerOf(fromClient));
            reset(ctx.channel());
        }
    }
}
