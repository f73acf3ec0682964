package io.netty.channel.epoll;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.util.concurrent.FastThreadLocal;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * baton's bridge for one Netty 4.2.18 epoll behaviour: when a stream channel wants no event at all
 * (its input ended and nothing waits to be written), its descriptor is removed from the epoll set,
 * but the next wish (EPOLLOUT for a write the socket cannot take at once) is sent as a modification
 * of the removed entry, fails with ENOENT, and Netty then shuts the channel's output, dropping
 * what was queued. A client that half-closes and then reads a large answer slowly lost the rest.
 *
 * <p>Netty's own server and datagram channels always keep EPOLLERR in their interest set, so it is
 * never empty. This gives stream channels the same: the kernel reports EPOLLERR whether asked or
 * not, so nothing else changes. Lives in Netty's package to reach {@code setFlag}; pinned to the
 * Netty version in pom.xml like {@code io.netty.channel.uring.BatonAdoptedSockets}.
 */
public final class BatonEpollStreams {
    private BatonEpollStreams() {
    }

    /** Keeps the channel's descriptor in the epoll set for life. Call before registration or on its loop. */
    public static <C extends Channel> C keepRegistered(C ch) {
        if (ch instanceof AbstractEpollStreamChannel s) {
            try {
                s.setFlag(Native.EPOLLERR);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return ch;
    }

    /**
     * Asks for EPOLLIN from the channel's first epoll_ctl (call before registration) instead of
     * with a second one when reading is turned on. For an upstream socket that is about to
     * connect: it has nothing to read before the connect completes.
     */
    public static <C extends Channel> C readFromConnect(C ch) {
        if (ch instanceof AbstractEpollStreamChannel s && !s.isRegistered()) {
            try {
                s.setFlag(Native.EPOLLIN);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
        return ch;
    }

    /**
     * Sends a FIN (shutdown SHUT_WR) on a stream channel whose queued bytes are all written. Netty's
     * own shutdownOutput builds an exception with a full stack trace for every call, to fail writes
     * that nobody makes here; this is the system call alone. The channel's isOutputShutdown() turns
     * true as with Netty's. Call on the channel's worker.
     */
    public static void shutdownOutput(Channel ch) throws IOException {
        ((AbstractEpollStreamChannel) ch).socket.shutdown(false, true);
    }

    /**
     * Reads what the socket holds right now into {@code buf}, past the channel (whose reading is
     * off): bytes read, 0 if nothing is there yet, -1 at the end of the stream. Throws on a reset.
     */
    public static int readNow(Channel ch, ByteBuf buf) throws IOException {
        LinuxSocket s = ((AbstractEpollStreamChannel) ch).socket;
        int n;
        if (buf.hasMemoryAddress()) {
            n = s.readAddress(buf.memoryAddress(), buf.writerIndex(), buf.capacity());
        } else {
            ByteBuffer b = buf.internalNioBuffer(buf.writerIndex(), buf.writableBytes());
            n = s.read(b, b.position(), b.limit());
        }
        if (n > 0) {
            buf.writerIndex(buf.writerIndex() + n);
        }
        return n;
    }

    /**
     * Delays the last ACK of the handshake until the first bytes go out, so they travel together
     * and the upstream is woken once, for a connection with its data (TCP_QUICKACK off before
     * connect, as HAProxy's tcp-smart-connect). Only for a socket that has bytes to send at once.
     */
    public static void ackWithFirstData(Channel ch) throws IOException {
        ((AbstractEpollStreamChannel) ch).socket.setTcpQuickAck(false);
    }

    /**
     * For a connect in progress that the kernel already completed (on loopback and in-host
     * networks it completes inside connect(2)): finishes it now, as the EPOLLOUT wake-up would,
     * so the connect's listeners run before this returns. Returns false (nothing done) otherwise.
     */
    public static boolean finishConnectIfDone(Channel ch) throws IOException {
        AbstractEpollStreamChannel c = (AbstractEpollStreamChannel) ch;
        if (!established(c.socket)) {
            return false;
        }
        ((AbstractEpollChannel.AbstractEpollUnsafe) c.unsafe()).epollOutReady();
        return true;
    }

    private static final int TCP_ESTABLISHED = 1;
    /** Where a worker reads TCP_INFO into: one per thread, not one per connection. */
    private static final FastThreadLocal<EpollTcpInfo> TCP_INFO = new FastThreadLocal<>() {
        @Override
        protected EpollTcpInfo initialValue() {
            return new EpollTcpInfo();
        }
    };

    /**
     * On loopback a refused connect also ends inside connect(2), which still says "in progress":
     * throws its error if it is already there, so that the next upstream is tried at once.
     */
    static void refusedAtOnce(LinuxSocket s) throws IOException {
        int error = s.getSoError();
        if (error == ECONNREFUSED) {
            throw new java.net.ConnectException("connect(..) failed: Connection refused");
        }
        if (error != 0) {
            throw new IOException("connect(..) failed: errno " + error);
        }
    }

    private static final int ECONNREFUSED = 111;

    static boolean established(LinuxSocket s) throws IOException {
        EpollTcpInfo info = TCP_INFO.get();
        s.getTcpInfo(info);
        return info.state() == TCP_ESTABLISHED;
    }

    /**
     * Connects a new TCP socket to {@code to} outside any channel and, if the kernel completed the
     * handshake inside connect(2) (loopback, and same-host bridges into containers), returns it as
     * a connected channel, not registered: no connect through the pipeline, no EPOLLOUT round, no
     * address look-ups after it. Returns null if the connect is still in progress (the socket is
     * closed: the caller connects the usual way); throws if it failed (refused, unreachable).
     */
    public static EpollSocketChannel connectInPlace(InetSocketAddress to, boolean ackWithFirstData) throws IOException {
        LinuxSocket s = BatonRawSocket.newStream(to);
        boolean kept = false;
        try {
            if (ackWithFirstData) {
                s.setTcpQuickAck(false);
            }
            if (!s.connect(to) && !established(s)) {
                refusedAtOnce(s);
                return null;
            }
            EpollSocketChannel ch = new EpollSocketChannel(null, s, to);
            kept = true;
            return ch;
        } finally {
            if (!kept) {
                s.close();
            }
        }
    }
}
