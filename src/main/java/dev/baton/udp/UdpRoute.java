package dev.baton.udp;

import io.netty.channel.ChannelHandler;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;

/**
 * The sockets of one UDP listen address and the proxy serving it. Each socket has its own
 * {@link UdpListenerHandler} with its own flow table; a reload may swap the proxy for new flows.
 */
public final class UdpRoute {
    private volatile UdpProxy proxy;
    private volatile boolean draining;
    private final List<UdpListenerHandler> handlers = new CopyOnWriteArrayList<>();

    public UdpRoute(UdpProxy proxy) {
        this.proxy = proxy;
    }

    public UdpProxy proxy() {
        return proxy;
    }

    public void proxy(UdpProxy proxy) {
        this.proxy = proxy;
    }

    /** Stop opening flows (stop, or the socket moves to a successor); open flows keep relaying. */
    public void drain() {
        draining = true;
    }

    public boolean draining() {
        return draining;
    }

    /**
     * While the predecessor's flows are on their way (upgrade), datagrams from clients with no
     * flow here yet wait instead of opening a new flow: the client may be one of those flows.
     * Each socket's handler flips this on its own worker, in order with the flows it adopts.
     */
    public void deferNewFlows() {
        for (UdpListenerHandler h : handlers) {
            h.defer(true);
        }
    }

    /** The flows have arrived: open flows for the clients that waited, in arrival order. */
    public void openDeferredFlows() {
        for (UdpListenerHandler h : handlers) {
            h.defer(false);
        }
    }

    /** Open flows on all sockets of this address. */
    public int flowCount() {
        int n = 0;
        for (UdpListenerHandler h : handlers) {
            n += h.size();
        }
        return n;
    }

    /** A new handler for one more socket of this address. */
    public ChannelHandler newHandler() {
        UdpListenerHandler h = new UdpListenerHandler(this);
        handlers.add(h);
        return h;
    }

    public List<UdpListenerHandler> handlers() {
        return handlers;
    }
}
