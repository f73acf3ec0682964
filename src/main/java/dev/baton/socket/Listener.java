package dev.baton.socket;

import io.netty.channel.Channel;

import java.util.List;

/**
 * One listen address: its sockets (one per worker with SO_REUSEPORT) and the proxy that serves
 * it. The proxy can be swapped by a reload without touching the sockets.
 */
public final class Listener {
    private final ListenerKey key;
    private volatile List<Channel> sockets;
    private final boolean adopted;
    private volatile Object target;

    Listener(ListenerKey key, List<Channel> sockets, boolean adopted, Object target) {
        this.key = key;
        this.sockets = List.copyOf(sockets);
        this.adopted = adopted;
        this.target = target;
    }

    public ListenerKey key() {
        return key;
    }

    public List<Channel> sockets() {
        return sockets;
    }

    /** Puts {@code ch} in the place of socket {@code index} (the same kernel socket, a new channel). */
    synchronized void replace(int index, Channel ch) {
        List<Channel> copy = new java.util.ArrayList<>(sockets);
        copy.set(index, ch);
        sockets = List.copyOf(copy);
    }

    /** Whether at least one socket came from a predecessor or from systemd rather than bind(). */
    public boolean adopted() {
        return adopted;
    }

    /** The proxy serving this address (a TcpProxy or UdpProxy). */
    @SuppressWarnings("unchecked")
    public <T> T target() {
        return (T) target;
    }

    public void retarget(Object proxy) {
        this.target = proxy;
    }
}
