package io.netty.channel.epoll;

import io.netty.channel.Channel;

import java.net.InetSocketAddress;

/**
 * A connection {@link BatonEpollServerSocketChannel} accepted: its socket, not registered anywhere,
 * and the peer's address. The owner relays it on {@link #raw()} or asks for a Netty channel
 * ({@link #channel()}, once); whoever holds it closes it (the raw socket's close does).
 */
public final class BatonAccepted {
    private final Channel listener;
    private final LinuxSocket socket;
    private final InetSocketAddress remote;
    private BatonRawSocket raw;

    BatonAccepted(Channel listener, LinuxSocket socket, InetSocketAddress remote) {
        this.listener = listener;
        this.socket = socket;
        this.remote = remote;
    }

    /** The listening socket that accepted it. */
    public Channel listener() {
        return listener;
    }

    /** The peer's address (null if the kernel named none: the peer was already gone). */
    public InetSocketAddress remote() {
        return remote;
    }

    /** The socket, to relay without a channel (the same one every call). */
    public BatonRawSocket raw() {
        if (raw == null) {
            raw = new BatonRawSocket(socket);
        }
        return raw;
    }

    /**
     * A Netty channel on this socket, as Netty's own server channel would have made it (not
     * registered; TCP_NODELAY set, as Netty sets it on every socket channel). Call once, after
     * the raw socket (if any) left the worker's epoll set.
     */
    public EpollSocketChannel channel() {
        return new EpollSocketChannel(listener, socket, remote);
    }
}
