package dev.baton.tcp;

import dev.baton.config.Addresses;
import dev.baton.config.ProxyProtocol;
import dev.baton.os.DescriptorLimit;
import dev.baton.proxyprotocol.ProxyHeader;
import dev.baton.upstream.Upstream;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.buffer.Unpooled;
import io.netty.channel.ChannelOutboundBuffer;
import io.netty.channel.epoll.BatonAccepted;
import io.netty.channel.epoll.BatonRawSocket;
import io.netty.channel.epoll.BatonSplice;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.util.concurrent.FastThreadLocal;
import io.netty.util.concurrent.Future;
import io.netty.util.concurrent.Promise;
import dev.baton.socket.Transport;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelFutureListener;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.ChannelOption;
import io.netty.channel.ChannelPromise;
import io.netty.channel.ConnectTimeoutException;
import io.netty.channel.EventLoop;
import io.netty.channel.socket.ChannelInputShutdownEvent;
import io.netty.channel.socket.DuplexChannel;
import io.netty.handler.codec.haproxy.HAProxyMessageDecoder;
import io.netty.util.ReferenceCountUtil;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.net.ConnectException;
import java.net.InetSocketAddress;
import java.nio.channels.NotYetConnectedException;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.LongAdder;

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
    /**
     * The client's channel: null while a connection accepted on epoll has none yet ({@link #accepted}
     * holds its socket), made when it moves onto channels ({@link #clientChannel}).
     */
    private Channel client;
    private BatonAccepted accepted;
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
    /** A graceful or abortive close has begun: such a connection is not handed over. */
    private boolean closing;
    /** Being handed to a successor: reads are carried over instead of relayed. */
    private boolean handingOver;
    /** A side failed while being handed over: the successor would get a dead socket. */
    private boolean broken;
    private ByteBuf carryC2U;
    /** Client bytes read before the upstream connected (a request sent with its FIN at once). */
    private ByteBuf early;
    private ByteBuf carryU2C;
    /**
     * The upstream connect runs outside any read of the client (from the accept): when the kernel
     * completes it inside connect(2), the relay starts at once instead of after another wake-up.
     */
    private boolean speculate;
    /** Most bytes taken from a new client before its upstream is there. */
    private static final int EARLY_READ = 4096;
    /**
     * The client as the upstream should see it: its address and the address it connected to. The
     * socket's own (destination null: read only if a header needs it), or those a trusted source's
     * PROXY protocol header named.
     */
    private InetSocketAddress source;
    private InetSocketAddress destination;
    /** A trusted source has not sent its PROXY protocol header yet (no upstream is chosen before). */
    private boolean awaitingHeader;
    /**
     * Idle timeout: when either side last read (or drained below its write-buffer low mark), and
     * the one timer of the connection, which re-arms itself for the rest of the time while there
     * is traffic. Reading a clock per read costs far less than Netty's IdleStateHandler, which
     * allocates a promise and a listener for every write.
     */
    private long lastActivity;
    private ScheduledFuture<?> idleTimer;
    /**
     * The raw phase (epoll): both sockets on the worker without channels, relayed with plain
     * read(2)/write(2) from the worker's buffer; null before, and once on channels or closed.
     */
    private BatonRawSocket rawClient;
    private BatonRawSocket rawUp;
    /** The raw upstream socket has not had its keepalive settings yet ({@link KeepaliveLater}). */
    private boolean keepaliveOwed;
    /** Bytes relayed each way in the raw phase (the channels' relay starts splicing past SPLICE_AFTER). */
    private long rawC2U;
    private long rawU2C;

    /**
     * A side relays this many bytes through buffers before its reads switch to splice (epoll): a
     * connection that only exchanges small messages never pays for setting splicing up, and splice
     * gains nothing on small reads (the kernel copies data that small into the pipe anyway).
     */
    static final int SPLICE_AFTER = 64 * 1024;

    TcpConnection(TcpProxy proxy, TcpProxy.State state, Channel client, EventLoop loop) {
        this.proxy = proxy;
        this.state = state;
        this.client = client;
        this.loop = loop;
    }

    /** For a connection accepted on epoll without a channel: it starts on raw sockets ({@link #startRaw}). */
    TcpConnection(TcpProxy proxy, TcpProxy.State state, BatonAccepted accepted, EventLoop loop) {
        this.proxy = proxy;
        this.state = state;
        this.accepted = accepted;
        this.loop = loop;
    }

    /**
     * The client's channel, made (not registered, set up as at an accept) if the connection had
     * none yet; null if that failed, the socket then closed. Call on the worker, with the client's
     * raw socket off the epoll set.
     */
    Channel clientChannel() {
        if (client == null) {
            Channel ch = accepted.channel();
            accepted = null;
            if (proxy.setUp(ch, state.config().tcp(), ch.parent())) {
                client = ch;
            }
        }
        return client;
    }

    /** Closes the client's socket before it was ever registered (no close future listens). */
    private void closeUnregisteredClient() {
        if (client != null) {
            client.unsafe().closeForcibly();
        } else if (accepted != null) {
            accepted.raw().close(false);
        }
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

    /** The accepted client's registration on its worker completed: relay if it succeeded. */
    void registered(Future<?> registration) {
        if (registration.isSuccess()) {
            start();
        } else {
            log.debug("proxy {}: cannot register an accepted connection: {}", proxy.name(),
                    registration.cause().toString());
            client.unsafe().closeForcibly();
        }
    }

    private void start() {
        source = (InetSocketAddress) client.remoteAddress();
        if (source == null) {
            // Reset before it was accepted: where the transport asks the socket for its peer
            // (io_uring's multishot accept), there is none to name any more. Nothing to relay.
            log.debug("proxy {}: an accepted connection was reset before it could be served", proxy.name());
            client.close();
            return;
        }
        opened();
        client.closeFuture().addListener(f -> sideClosed());
        if (state.config().proxyProtocol().trusts(source.getAddress())) {
            awaitHeader();
            return;
        }
        client.pipeline().addLast(new Relay(true, 0));
        if (!readEarly()) {
            return;
        }
        firstPick = state.balancer().first(source);
        speculate = true;
        connect(0);
    }

    /** The connection counts from here: in the worker's set, in the proxy's numbers, idle timer on. */
    private void opened() {
        proxy.connections().add(this);
        proxy.stats().opened.increment();
        proxy.stats().active.incrementAndGet();
        startIdleTimer();
    }

    /**
     * Takes what the client has sent by now (usually its whole first request: it writes as soon as
     * its connect returns), so that it can go to the upstream with the handshake's last ACK. False
     * if the client reset meanwhile (it is then closed).
     */
    private boolean readEarly() {
        ByteBuf buf = ByteBufAllocator.DEFAULT.directBuffer(EARLY_READ);
        try {
            int n;
            if (client != null) {
                n = proxy.transport().readNow(client, buf);
            } else if ((n = accepted.raw().read(buf, EARLY_READ)) > 0) {
                buf.writerIndex(n);
            }
            if (n > 0) {
                early = buf;
                return true;
            }
            // Nothing yet (the client reads first, or its bytes are on their way), or its FIN: that
            // is still there for the relay's first read.
        } catch (IOException | NotYetConnectedException e) {
            buf.release();
            log.debug("proxy {}: client {} failed before the upstream was chosen: {}", proxy.name(),
                    Addresses.format(source), e.toString());
            closing = true;
            if (client != null && client.isRegistered()) {
                client.close();
            } else {
                closeUnregisteredClient(); // the raw phase's accept: no close future listens
                finish();
            }
            return false;
        }
        buf.release();
        return true;
    }

    /**
     * A trusted source speaks first: read its PROXY protocol header (v1 or v2), then pick and
     * connect the upstream for the client it names. Until then the connection counts as
     * connecting, so an upgrade waits for it as for a connect in progress; the header must come
     * within the connect timeout.
     */
    private void awaitHeader() {
        awaitingHeader = true;
        client.pipeline().addLast(new HAProxyMessageDecoder(), new IncomingProxyHeader(this), new Relay(true, 0));
        long ms = state.config().tcp().connectTimeout().toMillis();
        loop.schedule(() -> {
            if (awaitingHeader && client.isActive()) {
                headerFailed("no PROXY protocol header within " + ms + " ms");
            }
        }, ms, java.util.concurrent.TimeUnit.MILLISECONDS);
        client.config().setAutoRead(true);
    }

    /** The trusted source's header arrived; null addresses mean "the socket's own" (LOCAL, UNKNOWN). */
    void headerReceived(InetSocketAddress headerSource, InetSocketAddress headerDestination) {
        awaitingHeader = false;
        if (headerSource != null) {
            source = headerSource;
            destination = headerDestination;
        }
        client.config().setAutoRead(false); // what follows the header waits in early until connected
        firstPick = state.balancer().first(source);
        connect(0);
    }

    /** A trusted source sent a malformed header, or none in time: the connection is closed. */
    void headerFailed(String why) {
        if (!awaitingHeader) {
            return; // the decoder may fail again on what was left when the connection closes
        }
        awaitingHeader = false;
        closing = true;
        proxy.badProxyHeader((InetSocketAddress) client.remoteAddress(), why);
        client.close();
    }

    /** The trusted source closed or reset before its header was complete. */
    void headerAbandoned() {
        if (!awaitingHeader) {
            return;
        }
        awaitingHeader = false;
        closing = true;
        log.debug("proxy {}: {} closed before its PROXY protocol header", proxy.name(), client.remoteAddress());
        client.close();
    }

    private void connect(int attempt) {
        Upstream u = state.balancer().get(firstPick, attempt);
        if (speculate && u.connectsInPlace() && connectInPlace(attempt, u)) {
            return;
        }
        Channel up;
        try {
            up = state.upstreamSocket().apply(u.address());
        } catch (RuntimeException e) {
            connectFailed(attempt, u, e);
            return;
        }
        up.pipeline().addLast(new Relay(false, 0));
        if (early != null) {
            try {
                proxy.transport().ackWithFirstData(up);
            } catch (IOException e) {
                log.debug("proxy {}: TCP_QUICKACK: {}", proxy.name(), e.getMessage());
            }
        }
        // On this worker, registering completes at once; the connect timeout is the channel's own.
        loop.register(up).addListener((ChannelFutureListener) reg -> {
            if (!reg.isSuccess()) {
                up.close();
                connectFailed(attempt, u, reg.cause());
                return;
            }
            ChannelPromise connecting = up.newPromise();
            up.connect(u.address(), connecting);
            ScheduledFuture<?> timeout = connecting.isDone() ? null : connectTimeout(up, connecting, u);
            connecting.addListener((ChannelFutureListener) done -> {
                if (timeout != null) {
                    timeout.cancel(false);
                }
                if (done.isSuccess()) {
                    connected(up, u);
                } else {
                    up.close(); // Netty leaves a socket whose connect failed open
                    connectFailed(attempt, u, done.cause());
                }
            });
            if (speculate && !connecting.isDone()) {
                try {
                    if (proxy.transport().finishConnectIfDone(up)) {
                        u.connectsInPlace(true); // its handshakes complete at once again (they had not, once)
                    }
                } catch (IOException e) {
                    // the EPOLLOUT wake-up reports it
                }
            }
        });
    }

    /**
     * Connects to {@code u} outside the channel when the kernel completes the handshake inside
     * connect(2) (loopback, same-host bridges): the relay starts in this same event, and Netty's
     * connect (a promise, an EPOLLOUT round, address look-ups) is skipped. False if it did not
     * complete so: {@code u} is then connected the usual way, until one of those connects is found
     * complete at once again.
     */
    private boolean connectInPlace(int attempt, Upstream u) {
        Channel up;
        try {
            up = state.upstreamInPlace().connect(u.address(), early != null);
        } catch (IOException | RuntimeException e) {
            connectFailed(attempt, u, e);
            return true;
        }
        if (up == null) {
            u.connectsInPlace(false);
            return false;
        }
        up.pipeline().addLast(new Relay(false, 0));
        loop.register(up).addListener((ChannelFutureListener) reg -> {
            if (!reg.isSuccess()) {
                up.close();
                connectFailed(attempt, u, reg.cause());
                return;
            }
            connected(up, u);
        });
        return true;
    }

    /**
     * Fails a connect still in progress after tcp.connect-timeout, as Netty's own timeout would; but
     * Netty's channel keeps its cancelled timer until it closes (64 bytes per connection), this one
     * is garbage once the connect is done.
     */
    private ScheduledFuture<?> connectTimeout(Channel up, ChannelPromise connecting, Upstream u) {
        long ms = state.config().tcp().connectTimeout().toMillis();
        return loop.schedule(() -> {
            if (connecting.tryFailure(new ConnectTimeoutException(
                    "connection timed out after " + ms + " ms: " + u.address()))) {
                up.close();
            }
        }, ms, TimeUnit.MILLISECONDS);
    }

    private void connectFailed(int attempt, Upstream u, Throwable cause) {
        if (DescriptorLimit.reached(cause)) {
            // This process cannot make a socket: no upstream is to blame, and the next would fail alike.
            DescriptorLimit.report("proxy " + proxy.name() + " cannot open upstream sockets; their clients are closed");
            giveUp();
            return;
        }
        String why = u + ": " + reason(cause);
        failures = failures == null ? why : failures + "; " + why;
        if (!client.isActive()) {
            return;
        }
        if (attempt + 1 < state.balancer().attempts()) {
            connect(attempt + 1);
        } else {
            giveUp();
            proxy.unreachable(source, failures);
        }
    }

    /** No upstream for this client: counted as failed, and the client closed (which frees its first bytes). */
    private void giveUp() {
        proxy.stats().failed.increment();
        client.close();
    }

    private void connected(Channel up, Upstream u) {
        if (!client.isActive()) {
            up.close();
            return;
        }
        upstream = up;
        target = u;
        u.opened();
        up.closeFuture().addListener(f -> sideClosed());
        ProxyProtocol header = state.config().proxyProtocol().send();
        if (header != ProxyProtocol.OFF) {
            // The very first bytes the upstream sees, before anything the client sent.
            InetSocketAddress reached = destination != null ? destination : (InetSocketAddress) client.localAddress();
            up.write(ProxyHeader.encode(header, true, source, reached), up.voidPromise());
        }
        if (early != null) {
            up.writeAndFlush(early, up.voidPromise());
            early = null;
        } else if (header != ProxyProtocol.OFF) {
            up.flush();
        }
        if (c2uInputDone) {
            inputShutdown(true); // the client's FIN came before the upstream was there
        }
        setReading(client, !c2uInputDone);
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

    /** Accounts the connection as gone once both sockets are closed. */
    private void sideClosed() {
        if (finished || client.isOpen() || (upstream != null && upstream.isOpen())) {
            return;
        }
        finish();
    }

    /** The connection leaves the books: timer, first bytes, its upstream's count, the set, the gauge. */
    private void finish() {
        finished = true;
        stopIdleTimer();
        if (early != null) {
            // The client went (or was given up) before an upstream took them: its first bytes go nowhere.
            early.release();
            early = null;
        }
        if (target != null) {
            target.closed();
        }
        proxy.connections().remove(this);
        proxy.stats().active.decrementAndGet();
    }

    private void startIdleTimer() {
        if (state.idleNanos() > 0) {
            lastActivity = System.nanoTime();
            idleTimer = loop.schedule(this::checkIdle, state.idleNanos(), TimeUnit.NANOSECONDS);
        }
    }

    private void stopIdleTimer() {
        if (idleTimer != null) {
            idleTimer.cancel(false);
            idleTimer = null;
        }
    }

    private void checkIdle() {
        if (finished || idleTimer == null) {
            return;
        }
        long left = state.idleNanos() - (System.nanoTime() - lastActivity);
        if (left > 0 || handingOver) {
            idleTimer = loop.schedule(this::checkIdle, left > 0 ? left : state.idleNanos(), TimeUnit.NANOSECONDS);
            return;
        }
        idleTimer = null;
        log.debug("proxy {}: closing idle connection from {}", proxy.name(), Addresses.format(source));
        // Not after a flush: idle this long with bytes queued means their reader stopped reading
        // (a zero window), and a flush would wait for it for ever. What is queued is dropped.
        closing = true;
        closeNow();
    }

    // ---- the raw phase (epoll) ------------------------------------------------------------

    /**
     * Starts a connection accepted on epoll (its channel not registered) on raw sockets: the
     * upstream is connected in place, and while the connection is a short exchange its bytes go
     * read(2) → write(2) through the worker's buffer, FINs and resets are passed on at once, and it
     * closes with two close(2) calls. No channel, pipeline, promise or listener is made for it.
     * It moves to Netty channels ({@link #toChannels}) the moment it needs them: a write the peer
     * cannot take at once (backpressure), a read that fills the worker's buffer (a stream, which
     * splice then moves without copying; not with {@code tcp.splice = false}), an upgrade handing
     * it over. Small messages stay raw for the connection's life (keep-alive HTTP, say). An
     * upstream whose connect does not complete at once (a remote one) is connected the usual way,
     * on channels. Returns false, having done nothing, where the connection must start on channels
     * from its accept (a trusted PROXY protocol source).
     */
    boolean startRaw() {
        source = accepted.remote();
        if (source == null || state.config().proxyProtocol().trusts(source.getAddress())) {
            return false;
        }
        opened();
        firstPick = state.balancer().first(source);
        boolean readYet = false;
        for (int attempt = 0; attempt < state.balancer().attempts(); attempt++) {
            Upstream u = state.balancer().get(firstPick, attempt);
            if (!u.connectsInPlace()) {
                if (!readYet && !readEarly()) {
                    return true;
                }
                onChannels(attempt);
                return true;
            }
            BatonRawSocket up = null;
            int written;
            try {
                up = state.rawUpstream().open(u.address());
                // The client's first bytes are read as late as possible before the connect (they
                // are on their way while the socket is made), to go with the handshake's last ACK.
                if (!readYet) {
                    readYet = true;
                    if (!readEarly()) {
                        up.close(false);
                        return true;
                    }
                }
                written = up.connectInPlace(u.address(), early);
            } catch (IOException | RuntimeException e) {
                if (up != null) {
                    up.close(false);
                }
                if (DescriptorLimit.reached(e)) {
                    DescriptorLimit.report("proxy " + proxy.name() + " cannot open upstream sockets; their clients are closed");
                    rawGiveUp();
                    return true;
                }
                String why = u + ": " + reason(e);
                failures = failures == null ? why : failures + "; " + why;
                continue;
            }
            if (written < 0) {
                up.close(false);
                u.connectsInPlace(false); // not at once: this one is connected the usual way from now on
                onChannels(attempt);
                return true;
            }
            rawConnected(up, u, written);
            return true;
        }
        rawGiveUp();
        proxy.unreachable(source, failures);
        return true;
    }

    /** The upstream is not connected in place: the client's channel is registered and connects it the usual way. */
    private void onChannels(int attempt) {
        if (clientChannel() == null) {
            closing = true;
            finish();
            return;
        }
        client.closeFuture().addListener(f -> sideClosed());
        client.pipeline().addLast(new Relay(true, 0));
        ChannelFuture reg = loop.register(client); // on this worker: done at once
        if (!reg.isSuccess()) {
            log.debug("proxy {}: cannot register an accepted connection: {}", proxy.name(), reg.cause().toString());
            client.unsafe().closeForcibly();
            if (!finished) {
                finish();
            }
            return;
        }
        speculate = true;
        connect(attempt);
    }

    /** No upstream for a client in the raw phase: counted as failed, the client closed. */
    private void rawGiveUp() {
        proxy.stats().failed.increment();
        closing = true;
        closeUnregisteredClient();
        finish(); // also frees its first bytes
    }

    /** The upstream connected in place, {@code written} of the client's first bytes already sent to it. */
    private void rawConnected(BatonRawSocket up, Upstream u, int written) {
        target = u;
        u.opened();
        rawUp = up;
        rawClient = accepted.raw();
        try {
            rawClient.register(loop, this::rawReadable);
            rawUp.register(loop, this::rawReadable);
        } catch (Exception e) {
            log.debug("proxy {}: cannot register a connection: {}", proxy.name(), e.toString());
            rawClose(true);
            return;
        }
        RAW_STARTED.increment();
        if (state.rawUpstream().keepalive()) {
            keepaliveOwed = true;
            KeepaliveLater.add(loop, this);
        }
        if (early != null) {
            ByteBuf b = early;
            early = null;
            rawC2U = written;
            if (written < b.readableBytes()) {
                toChannels(b.skipBytes(written), null);
                return;
            }
            b.release();
        }
    }

    /**
     * One side of a raw connection can be read: relays what it has to the other side. Nothing may
     * be thrown out of here: Netty's epoll loop logs it and then sleeps for a second, with every
     * connection on the worker.
     */
    private void rawReadable(BatonRawSocket from) {
        try {
            relayRaw(from);
        } catch (RuntimeException e) {
            log.warn("proxy {}: unexpected error relaying a connection; it is reset", proxy.name(), e);
            if (rawClient != null) {
                rawClose(true);
            }
        }
    }

    private void relayRaw(BatonRawSocket from) {
        if (rawClient == null) {
            return; // on channels, or closed, since this event was collected
        }
        boolean fromClient = from == rawClient;
        if (fromClient ? c2uInputDone : u2cInputDone) {
            rawFailed(fromClient, null); // its reads are off: only EPOLLERR/EPOLLHUP come, a reset
            return;
        }
        BatonRawSocket to = fromClient ? rawUp : rawClient;
        ByteBuf buf = RAW_BUFFER.get();
        int cap = buf.capacity();
        for (int i = 0; i < 16; i++) {
            int n;
            try {
                n = from.read(buf, cap);
            } catch (IOException | NotYetConnectedException e) {
                rawFailed(fromClient, e);
                return;
            }
            if (n == 0) {
                break;
            }
            if (n < 0) {
                rawEnd(fromClient);
                return;
            }
            if (idleTimer != null) {
                lastActivity = System.nanoTime();
            }
            int w;
            try {
                w = to.write(buf, 0, n);
            } catch (IOException | NotYetConnectedException e) {
                rawFailed(!fromClient, e);
                return;
            }
            long relayed = fromClient ? (rawC2U += w) : (rawU2C += w);
            if (w < n) {
                // The peer cannot take it all now: channels queue the rest and pace the reads.
                ByteBuf rest = ByteBufAllocator.DEFAULT.directBuffer(n - w);
                rest.writeBytes(buf, w, n - w);
                toChannels(fromClient ? rest : null, fromClient ? null : rest);
                return;
            }
            if (n == cap && state.config().tcp().splice()) {
                // A read that fills the buffer: a stream, which splice moves without copying (from
                // the next read on). Small messages stay here: a read and a write each, no pipeline.
                if (fromClient) {
                    rawC2U = Math.max(relayed, SPLICE_AFTER);
                } else {
                    rawU2C = Math.max(relayed, SPLICE_AFTER);
                }
                toChannels(null, null);
                return;
            }
            if (n < cap) {
                break;
            }
        }
    }

    /** A side's FIN: passed on at once (nothing is ever queued in the raw phase). */
    private void rawEnd(boolean fromClient) {
        if (fromClient) {
            c2uInputDone = true;
        } else {
            u2cInputDone = true;
        }
        if (fromClient ? u2cInputDone : c2uInputDone) {
            // The other way ended before (its FIN passed on): both are done, and the close sends this FIN.
            c2uOutputDone = u2cOutputDone = true;
            rawClose(false);
            return;
        }
        BatonRawSocket self = fromClient ? rawClient : rawUp;
        try {
            (fromClient ? rawUp : rawClient).shutdownOutput();
        } catch (IOException | NotYetConnectedException e) {
            // ENOTCONN (unchecked from Netty): the other side reset, its event not handled yet
            rawFailed(!fromClient, e);
            return;
        }
        if (fromClient) {
            c2uOutputDone = true;
        } else {
            u2cOutputDone = true;
        }
        self.reading(false);
    }

    /** A side failed (reset, or an error): both are reset, as on channels. */
    private void rawFailed(boolean clientSide, Exception e) {
        log.debug("proxy {}: {} side failed: {}", proxy.name(), clientSide ? "client" : "upstream",
                e == null ? "reset" : e.toString());
        rawClose(true);
    }

    /** Closes both raw sockets (abortively with {@code reset}) and takes the connection off the books. */
    private void rawClose(boolean reset) {
        closing = true;
        BatonRawSocket c = rawClient;
        BatonRawSocket u = rawUp;
        rawClient = rawUp = null;
        if (c != null) {
            c.close(reset);
        } else {
            closeUnregisteredClient();
        }
        if (u != null) {
            u.close(reset);
        }
        if (!finished) {
            finish();
        }
    }

    /**
     * Moves a raw connection onto Netty channels, as they are, with the bytes still owed each way:
     * the client's accepted channel is registered after all, the upstream socket gets one, and
     * relaying goes on as if it had started there. Call on the worker.
     */
    private void toChannels(ByteBuf toUpstream, ByteBuf toClient) {
        payKeepalive();
        BatonRawSocket c = rawClient;
        BatonRawSocket u = rawUp;
        rawClient = rawUp = null;
        c.deregister();
        u.deregister();
        if (clientChannel() == null) {
            ReferenceCountUtil.release(toUpstream);
            ReferenceCountUtil.release(toClient);
            closing = true;
            u.close(false);
            finish();
            return;
        }
        Channel up = u.toChannel(target.address());
        proxy.promoted(up, state.config().tcp());
        client.pipeline().addLast(new Relay(true, rawC2U));
        up.pipeline().addLast(new Relay(false, rawU2C));
        upstream = up;
        ChannelFuture r1 = loop.register(client); // on this worker: done at once
        ChannelFuture r2 = loop.register(up);
        if (!r1.isSuccess() || !r2.isSuccess()) {
            log.warn("proxy {}: cannot move a connection onto channels: {}", proxy.name(),
                    (r1.isSuccess() ? r2 : r1).cause().toString());
            ReferenceCountUtil.release(toUpstream);
            ReferenceCountUtil.release(toClient);
            closing = true;
            client.unsafe().closeForcibly();
            up.unsafe().closeForcibly();
            finish();
            return;
        }
        RAW_MOVED.increment();
        client.closeFuture().addListener(f -> sideClosed());
        up.closeFuture().addListener(f -> sideClosed());
        resume(toUpstream, toClient);
    }

    /**
     * Gives the raw upstream socket the keepalive settings it was opened without, if still owed:
     * about a second into the connection, or as it moves onto channels. Call on the worker.
     */
    void payKeepalive() {
        if (!keepaliveOwed) {
            return;
        }
        keepaliveOwed = false;
        if (rawUp == null) {
            return; // closed meanwhile
        }
        try {
            state.rawUpstream().keepalive(rawUp);
        } catch (IOException e) {
            log.debug("proxy {}: cannot set keepalive on an upstream socket: {}", proxy.name(), e.toString());
        }
    }

    /** The raw client socket's descriptor, -1 once on channels or closed (tests; on the worker). */
    int rawClientFd() {
        return rawClient != null ? rawClient.intValue() : -1;
    }

    /** The raw upstream socket's descriptor, -1 once on channels or closed (tests; on the worker). */
    int rawUpstreamFd() {
        return rawUp != null ? rawUp.intValue() : -1;
    }

    /**
     * For an upgrade: a connection still in the raw phase moves onto channels first, so that it
     * is handed over like any other. Call on the worker.
     */
    public void leaveRawPhase() {
        if (rawClient != null) {
            toChannels(null, null);
        }
    }

    /** Closes both sides now (end of a drain); call on the worker. */
    public void closeNow() {
        if (rawClient != null) {
            rawClose(false);
            return;
        }
        if (client == null) { // not reached: a connection without a channel is on raw sockets
            closeUnregisteredClient();
            if (!finished) {
                finish();
            }
            return;
        }
        client.close();
        if (upstream != null) {
            upstream.close();
        }
    }

    /** Connections begun in the raw phase, and those of them that moved onto channels later. */
    public static long rawStarted() {
        return RAW_STARTED.sum();
    }

    public static long rawMoved() {
        return RAW_MOVED.sum();
    }

    private static final LongAdder RAW_STARTED = new LongAdder();
    private static final LongAdder RAW_MOVED = new LongAdder();

    /** Most bytes one read takes in the raw phase. */
    static final int RAW_READ = 64 * 1024;

    /** The worker's read buffer for the raw phase: each read is written on before the next one. */
    private static final FastThreadLocal<ByteBuf> RAW_BUFFER = new FastThreadLocal<>() {
        @Override
        protected ByteBuf initialValue() {
            return PooledByteBufAllocator.DEFAULT.directBuffer(RAW_READ, RAW_READ);
        }

        @Override
        protected void onRemoval(ByteBuf buf) {
            buf.release();
        }
    };


    // ---- handoff to a successor process -------------------------------------------------

    /** Both sockets open, connected, and nothing closing: this connection can move whole. */
    public boolean movable() {
        return upstream != null && !closing && !handingOver && client != null && client.isActive()
                && upstream.isActive();
    }

    /** Whether the upstream connect is still in progress (such a connection drains instead). */
    public boolean connecting() {
        return upstream == null && client != null && client.isActive() && !closing;
    }

    /**
     * Stops relaying and takes both sockets off this worker (nothing is closed, nothing sent).
     * Call on the worker; the future completes when both are deregistered.
     */
    public Future<Void> beginHandoff() {
        handingOver = true; // from here, whatever is read is carried over, not relayed
        // An input ending from here on is carried over as a FIN, never turned into a close here.
        client.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
        upstream.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
        Promise<Void> done = loop.newPromise();
        ChannelFuture a = proxy.transport().release(client);
        ChannelFuture b = proxy.transport().release(upstream);
        ChannelFutureListener both = f -> {
            if (a.isDone() && b.isDone() && !done.isDone()) {
                done.setSuccess(null);
            }
        };
        a.addListener(both);
        b.addListener(both);
        return done;
    }

    /**
     * After {@link #beginHandoff()}: what the successor needs to carry on exactly where this
     * process stopped (the sockets, the bytes read but not yet written, the half-close state).
     * The connection leaves this process's books; its sockets are left open for the successor.
     * Returns null if a side broke meanwhile (the connection is then reset here).
     */
    public Snapshot snapshot() {
        if (broken) {
            handingOver = false;
            closing = true;
            reset(client);
            reset(upstream);
            return null;
        }
        byte[] c2u = drain(upstream, carryC2U);
        byte[] u2c = drain(client, carryU2C);
        carryC2U = carryU2C = null;
        finished = true;
        stopIdleTimer();
        if (target != null) {
            target.closed();
        }
        proxy.connections().remove(this);
        proxy.stats().active.decrementAndGet();
        return new Snapshot(proxy.name(), Transport.fd(client), Transport.fd(upstream),
                c2uInputDone, c2uOutputDone, u2cInputDone, u2cOutputDone, c2u, u2c);
    }

    /** Bytes queued for {@code ch} but not yet in its kernel buffer, then those read meanwhile. */
    private static byte[] drain(Channel ch, ByteBuf carried) {
        ChannelOutboundBuffer ob = ch.unsafe().outboundBuffer();
        ByteBuf all = Unpooled.buffer();
        if (ob != null) {
            ob.addFlush();
            Object m;
            while ((m = ob.current()) != null) {
                if (m instanceof ByteBuf b) {
                    all.writeBytes(b, b.readerIndex(), b.readableBytes());
                }
                ob.remove();
            }
        }
        if (carried != null) {
            all.writeBytes(carried);
            carried.release();
        }
        byte[] out = new byte[all.readableBytes()];
        all.readBytes(out);
        all.release();
        return out;
    }

    private void carry(boolean fromClient, ByteBuf msg) {
        if (fromClient) {
            carryC2U = append(carryC2U, msg);
        } else {
            carryU2C = append(carryU2C, msg);
        }
    }

    private static ByteBuf append(ByteBuf to, ByteBuf msg) {
        ByteBuf b = to != null ? to : Unpooled.buffer(msg.readableBytes());
        b.writeBytes(msg);
        msg.release();
        return b;
    }

    /** A connection as it moves between processes. */
    public record Snapshot(String proxy, int clientFd, int upstreamFd,
                           boolean c2uInputDone, boolean c2uOutputDone,
                           boolean u2cInputDone, boolean u2cOutputDone,
                           byte[] toUpstream, byte[] toClient) {
    }

    /**
     * In the successor: takes over a connection from a snapshot. The sockets must already be
     * wrapped in channels of this process's transport; they are registered on {@code loop}.
     */
    public static void adopt(TcpProxy proxy, EventLoop loop, Channel client, Channel upstream, Snapshot s) {
        TcpProxy.State state = proxy.state();
        TcpConnection c = new TcpConnection(proxy, state, client, loop);
        c.c2uInputDone = s.c2uInputDone();
        c.c2uOutputDone = s.c2uOutputDone();
        c.u2cInputDone = s.u2cInputDone();
        c.u2cOutputDone = s.u2cOutputDone();
        for (Channel ch : new Channel[] {client, upstream}) {
            ch.config().setAutoRead(false);
            ch.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, true);
        }
        client.pipeline().addLast(c.new Relay(true, 0));
        upstream.pipeline().addLast(c.new Relay(false, 0));
        c.upstream = upstream;
        // Counted once both are registered, on their worker (the only thread that touches its
        // connection set): a registration that fails leaves no count behind.
        loop.register(client).addListener(f1 -> loop.register(upstream).addListener(f2 -> {
            if (!f1.isSuccess() || !f2.isSuccess()) {
                log.warn("proxy {}: cannot adopt a connection: {}", proxy.name(),
                        (f1.isSuccess() ? f2 : f1).cause().getMessage());
                client.close();
                upstream.close();
                return;
            }
            c.target = state.balancer().find((InetSocketAddress) upstream.remoteAddress());
            if (c.target != null) {
                c.target.opened();
            }
            proxy.connections().add(c);
            proxy.stats().opened.increment();
            proxy.stats().active.incrementAndGet();
            client.closeFuture().addListener(x -> c.sideClosed());
            upstream.closeFuture().addListener(x -> c.sideClosed());
            c.startIdleTimer();
            c.resume(s.toUpstream().length > 0 ? Unpooled.wrappedBuffer(s.toUpstream()) : null,
                    s.toClient().length > 0 ? Unpooled.wrappedBuffer(s.toClient()) : null);
        }));
    }

    /** Relaying resumes on channels: bytes still owed each way first, then FINs owed, then reads. */
    private void resume(ByteBuf toUpstream, ByteBuf toClient) {
        if (toUpstream != null) {
            upstream.write(toUpstream, upstream.voidPromise());
        }
        if (toClient != null) {
            client.write(toClient, client.voidPromise());
        }
        upstream.flush();
        client.flush();
        // A FIN that arrived before the move but was not passed on yet goes out after those bytes.
        if (c2uInputDone && !c2uOutputDone) {
            inputShutdown(true);
        }
        if (u2cInputDone && !u2cOutputDone) {
            inputShutdown(false);
        }
        if (c2uInputDone && c2uOutputDone && u2cInputDone && u2cOutputDone) {
            closeBoth();
            return;
        }
        setReading(client, !c2uInputDone && upstream.isWritable());
        setReading(upstream, !u2cInputDone && client.isWritable());
    }

    private Channel peerOf(boolean fromClient) {
        return fromClient ? upstream : client;
    }

    /**
     * A side's FIN arrived. Unless that closed the side already, it stops reading: there is
     * nothing more to read, and level-triggered epoll would report the end of the stream again and
     * again (a wake-up and an empty read each time) for as long as the other direction stays open.
     */
    private void inputShutdown(boolean fromClient) {
        passFin(fromClient);
        Channel self = fromClient ? client : upstream;
        if (self != null && self.isOpen()) {
            self.config().setAutoRead(false);
        }
    }

    private void passFin(boolean fromClient) {
        if (fromClient) {
            c2uInputDone = true;
        } else {
            u2cInputDone = true;
        }
        Channel peer = peerOf(fromClient);
        if (peer == null && connecting()) {
            return; // passed on once connected
        }
        if (peer == null || !peer.isActive()) {
            closeBoth();
            return;
        }
        // FIN travels after every byte read before it.
        if (handingOver) {
            return; // the successor sends this FIN, after the bytes carried over
        }
        peer.writeAndFlush(Unpooled.EMPTY_BUFFER).addListener((ChannelFutureListener) f -> {
            if (handingOver) {
                return;
            }
            if (!f.isSuccess()) {
                closeBoth();
                return;
            }
            if (fromClient ? u2cInputDone : c2uInputDone) {
                // The peer already sent its FIN: it has nothing more to say and now nothing more to
                // hear, so a close (which sends the FIN) ends it without a half-close first.
                if (fromClient) {
                    c2uOutputDone = true;
                } else {
                    u2cOutputDone = true;
                }
                if (c2uInputDone && c2uOutputDone && u2cInputDone && u2cOutputDone) {
                    closeBoth();
                } else {
                    closing = true;
                    peer.close(); // the other side gets the rest of its bytes, then its FIN
                }
                return;
            }
            proxy.transport().shutdownOutput(peer).addListener(g -> {
                if (handingOver) {
                    return;
                }
                if (fromClient) {
                    c2uOutputDone = true;
                } else {
                    u2cOutputDone = true;
                }
                if (!g.isSuccess() || (c2uInputDone && c2uOutputDone && u2cInputDone && u2cOutputDone)) {
                    closeBoth();
                    return;
                }
                // Its output is shut: when its input ends too, there is nothing left to do with it but
                // close it, and Netty then closes it at once (the relay closes the other side after its
                // bytes) instead of shutting the input of a socket the kernel has already closed, which
                // fails with ENOTCONN and costs an exception with its stack trace per connection.
                peer.config().setOption(ChannelOption.ALLOW_HALF_CLOSURE, false);
            });
        });
    }

    /** Graceful close: what is queued is written first. */
    private void closeBoth() {
        if (handingOver) {
            return;
        }
        closing = true;
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
        /** Bytes this side's reads relayed through buffers, up to SPLICE_AFTER; -1 once splicing was tried. */
        private int buffered;
        /** Zero-copy relaying of this side's reads, once started (epoll only). */
        private BatonSplice.Direction splice;

        /** {@code relayed}: bytes this side already relayed before (in the raw phase). */
        Relay(boolean fromClient, long relayed) {
            this.fromClient = fromClient;
            this.buffered = (int) Math.min(relayed, SPLICE_AFTER);
        }

        @Override
        public void channelRead(ChannelHandlerContext ctx, Object msg) {
            if (handingOver) {
                carry(fromClient, (ByteBuf) msg);
                return;
            }
            Channel peer = peerOf(fromClient);
            if (peer == null && fromClient && connecting()) {
                // Native transports read once on EPOLLRDHUP even with autoRead off: keep it.
                early = append(early, (ByteBuf) msg);
                return;
            }
            if (peer == null || !peer.isActive()) {
                ReferenceCountUtil.release(msg);
                return;
            }
            if (buffered >= 0 && buffered < SPLICE_AFTER && msg instanceof ByteBuf b) {
                buffered += b.readableBytes();
            }
            peer.write(msg, peer.voidPromise());
            if (!peer.isWritable()) {
                ctx.channel().config().setAutoRead(false);
            }
        }

        /**
         * This side has relayed enough to be a stream rather than an exchange of small messages:
         * from here on its reads splice into the peer where the transport can. Not while a trusted
         * source's PROXY protocol decoder is still in the pipeline: its bytes must pass through it.
         */
        private void startSplicing(Channel self, Channel peer) {
            buffered = -1;
            if (peer == null || !state.config().tcp().splice() || handingOver
                    || self.pipeline().get(HAProxyMessageDecoder.class) != null) {
                return;
            }
            splice = proxy.transport().splice(self, peer, () -> !handingOver);
        }

        @Override
        public void channelReadComplete(ChannelHandlerContext ctx) {
            if (idleTimer != null) {
                lastActivity = System.nanoTime();
            }
            Channel peer = peerOf(fromClient);
            if (peer != null) {
                peer.flush();
            }
            if (splice != null) {
                splice.rearm(); // if this read fell back to buffers
            } else if (buffered >= SPLICE_AFTER) {
                startSplicing(ctx.channel(), peer);
            }
        }

        @Override
        public void channelWritabilityChanged(ChannelHandlerContext ctx) {
            // This side drained (or filled): let the side that writes into it read again (or stop).
            if (idleTimer != null) {
                lastActivity = System.nanoTime(); // a slow reader is still reading
            }
            Channel peer = peerOf(fromClient);
            if (peer != null && peer.isActive() && !handingOver) {
                setReading(peer, ctx.channel().isWritable());
            }
            ctx.fireChannelWritabilityChanged();
        }

        @Override
        public void userEventTriggered(ChannelHandlerContext ctx, Object evt) {
            if (evt instanceof ChannelInputShutdownEvent) {
                inputShutdown(fromClient);
            } else {
                ctx.fireUserEventTriggered(evt);
            }
        }

        @Override
        public void channelInactive(ChannelHandlerContext ctx) {
            if (handingOver) {
                return;
            }
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
            if (handingOver) {
                broken = true;
                return;
            }
            closing = true;
            reset(peerOf(fromClient));
            reset(ctx.channel());
        }
    }
}
