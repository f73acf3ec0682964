package io.netty.channel.epoll;

import io.netty.buffer.ByteBuf;
import io.netty.channel.EventLoop;
import io.netty.channel.IoEvent;
import io.netty.channel.IoEventLoop;
import io.netty.channel.IoRegistration;
import io.netty.channel.unix.BatonKnownFamily;
import io.netty.channel.unix.Errors;
import io.netty.channel.unix.FileDescriptor;

import java.io.IOException;
import java.net.Inet6Address;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;

/**
 * A connected TCP socket on a worker's epoll set without a Netty channel: no pipeline, promise,
 * channel config or close future, and none of the system calls a channel makes around them
 * (address look-ups, SO_SNDBUF and SO_LINGER reads, epoll_ctl before close). baton relays a
 * connection this way while it is a short exchange and hands it to Netty channels ({@link #detach})
 * the moment it needs more (see {@code dev.baton.tcp.TcpConnection}).
 *
 * <p>Registered on Netty's epoll loop through its {@link EpollIoHandle} API, level-triggered: the
 * owner is told when the socket is readable or failed, and reads it with plain read(2). Only ever
 * touched on its worker's thread. The client's socket comes from {@link BatonAccepted} (no
 * channel was made for it), the upstream's from {@link #open}; both are made without asking the
 * kernel their family ({@link io.netty.channel.unix.BatonKnownFamily}). Lives in Netty's package
 * for {@link LinuxSocket}'s constructor and options; pinned to the Netty version in pom.xml like
 * {@link BatonEpollStreams}.
 */
public final class BatonRawSocket implements EpollIoHandle {
    /** What the owner hears: the socket can be read (data, its end, or an error to collect). */
    public interface Owner {
        void readable(BatonRawSocket socket);
    }

    private final LinuxSocket socket;
    private Owner owner;
    private IoRegistration registration;
    private boolean reading;

    BatonRawSocket(LinuxSocket socket) {
        this.socket = socket;
    }

    /**
     * A new TCP socket for connecting to {@code to}, TCP_NODELAY set if asked; no keepalive yet
     * ({@link #keepalive}). Not connected yet: see {@link #connectInPlace}.
     */
    public static BatonRawSocket open(InetSocketAddress to, boolean nodelay) throws IOException {
        LinuxSocket s = newStream(to);
        boolean kept = false;
        try {
            if (nodelay) {
                s.setTcpNoDelay(true);
            }
            kept = true;
            return new BatonRawSocket(s);
        } finally {
            if (!kept) {
                s.close();
            }
        }
    }

    /** A new TCP socket of {@code to}'s family (not connected, no options set). */
    static LinuxSocket newStream(InetSocketAddress to) {
        boolean ipv6 = to.getAddress() instanceof Inet6Address;
        return socket(BatonKnownFamily.newStreamFd(ipv6), ipv6);
    }

    /** Netty's socket object for {@code fd} of this family, made without asking the kernel its family. */
    static LinuxSocket socket(int fd, boolean ipv6) {
        LinuxSocket s = BatonKnownFamily.wrap(LinuxSocket.class, fd, ipv6);
        return s != null ? s : new LinuxSocket(fd);
    }

    /**
     * Turns keepalive on with these settings (seconds, seconds, probes; off with {@code idle} 0);
     * does nothing once the socket is closed. Call on its worker: a descriptor closed there cannot
     * have been reused by the time this runs.
     */
    public void keepalive(int idle, int interval, int count) throws IOException {
        if (!socket.isOpen()) {
            return;
        }
        if (idle <= 0) {
            socket.setKeepAlive(false);
            return;
        }
        socket.setKeepAlive(true);
        socket.setTcpKeepIdle(idle);
        socket.setTcpKeepIntvl(interval);
        socket.setTcpKeepCnt(count);
    }

    /** Sets TCP_NODELAY (on an accepted socket whose listening socket did not pass it on). */
    public void nodelay(boolean on) throws IOException {
        socket.setTcpNoDelay(on);
    }

    /**
     * Connects this socket (from {@link #open}) to {@code to} and, if the kernel completed the
     * handshake inside connect(2) (loopback, same-host bridges), writes what it takes of
     * {@code first} (from its reader index; null: nothing to send yet). Returns the bytes written
     * (0 without first bytes), or -1 if the connect is still in progress (the caller closes the
     * socket). Throws if it failed, which on loopback is also known at once.
     *
     * <p>With first bytes, the handshake's last ACK waits for them (TCP_QUICKACK off), and the
     * write itself tells whether the connect completed: a socket still connecting takes nothing
     * (EAGAIN) and one that was refused fails with the refusal, so the socket's state is not
     * asked for (one system call less than without).
     */
    public int connectInPlace(InetSocketAddress to, ByteBuf first) throws IOException {
        if (first != null) {
            socket.setTcpQuickAck(false);
        }
        boolean connected = socket.connect(to);
        if (first == null) {
            if (connected || BatonEpollStreams.established(socket)) {
                return 0;
            }
            BatonEpollStreams.refusedAtOnce(socket);
            return -1;
        }
        int written;
        try {
            written = write(first, first.readerIndex(), first.readableBytes());
        } catch (Errors.NativeIoException e) {
            if (e.expectedErr() == Errors.ERROR_ECONNREFUSED_NEGATIVE) {
                throw new java.net.ConnectException("connect(..) failed: Connection refused");
            }
            throw e;
        } catch (java.nio.channels.NotYetConnectedException e) {
            return -1; // not a state a connecting socket reports, but it says the same
        }
        return written > 0 ? written : -1;
    }

    /**
     * Adds the socket to {@code loop}'s epoll set, asking for reads, and from then on tells
     * {@code owner}. Call on that loop. Throws if the loop refuses it.
     */
    public void register(EventLoop loop, Owner owner) throws Exception {
        this.owner = owner;
        registration = ((IoEventLoop) loop).register(this).getNow();
        if (registration == null) {
            throw new IOException("not registered (not on the worker's thread?)");
        }
        reading = true;
        registration.submit(EpollIoOps.EPOLLIN);
    }

    /**
     * Reads at most {@code length} bytes into {@code buf} from index 0 (its indexes are left alone):
     * bytes read, 0 if there is nothing now, -1 at the end of the stream. Throws on an error (a reset).
     */
    public int read(ByteBuf buf, int length) throws IOException {
        if (buf.hasMemoryAddress()) {
            return socket.readAddress(buf.memoryAddress(), 0, length);
        }
        ByteBuffer b = buf.internalNioBuffer(0, length);
        return socket.read(b, b.position(), b.limit());
    }

    /** Writes {@code length} bytes of {@code buf} from {@code index}: bytes the kernel took (0 if none now). */
    public int write(ByteBuf buf, int index, int length) throws IOException {
        if (buf.hasMemoryAddress()) {
            return socket.writeAddress(buf.memoryAddress(), index, index + length);
        }
        ByteBuffer b = buf.internalNioBuffer(index, length);
        return socket.write(b, b.position(), b.limit());
    }

    /** Sends a FIN (shutdown SHUT_WR). */
    public void shutdownOutput() throws IOException {
        socket.shutdown(false, true);
    }

    /**
     * Turns read events on or off. Off, the socket stays in the epoll set (for EPOLLERR, which the
     * kernel reports regardless), so turning it on again is a modification, never a re-add.
     */
    public void reading(boolean on) {
        if (on != reading && registration != null) {
            reading = on;
            registration.submit(on ? EpollIoOps.EPOLLIN : EpollIoOps.EPOLLERR);
        }
    }

    /**
     * Closes the socket; with {@code reset}, abortively (SO_LINGER 0: the peer gets a RST). The
     * descriptor leaves the epoll set with the close, so no epoll_ctl is made for it.
     */
    public void close(boolean reset) {
        if (reset && socket.isOpen()) {
            try {
                socket.setSoLinger(0);
            } catch (IOException ignored) {
                // a plain close is all that is left
            }
        }
        try {
            socket.close();
        } catch (IOException ignored) {
            // nothing more to do with it
        }
        if (registration != null) {
            registration.cancel(); // the descriptor is closed: bookkeeping only
            registration = null;
        }
    }

    /**
     * Takes the socket off the epoll set (it stays open) so that a Netty channel can carry on with
     * it. Call on the worker.
     */
    public void deregister() {
        if (registration != null) {
            registration.cancel();
            registration = null;
        }
    }

    /**
     * A connected epoll channel (not registered) on this socket, after {@link #deregister()}: for
     * an upstream socket made by {@link #connectInPlace}.
     */
    public EpollSocketChannel toChannel(InetSocketAddress remote) {
        return BatonEpollStreams.keepRegistered(new EpollSocketChannel(null, socket, remote));
    }

    public boolean isOpen() {
        return socket.isOpen();
    }

    public int intValue() {
        return socket.intValue();
    }

    // ---- EpollIoHandle

    @Override
    public FileDescriptor fd() {
        return socket;
    }

    @Override
    public void handle(IoRegistration registration, IoEvent event) {
        // Readable, its end, or EPOLLERR/EPOLLHUP: a read tells which (an error comes back as one).
        if (owner != null && socket.isOpen()) {
            owner.readable(this);
        }
    }

    /** The worker is shutting down with this socket still on it. */
    @Override
    public void close() {
        close(false);
    }
}
