package dev.baton.tcp;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelInitializer;

/**
 * The child handler of every socket of one TCP listen address: hands each accepted connection to
 * the proxy currently serving that address (a reload may swap it; the sockets stay).
 */
@ChannelHandler.Sharable
public final class TcpAcceptor extends ChannelInitializer<Channel> {
    private volatile TcpProxy proxy;

    public TcpAcceptor(TcpProxy proxy) {
        this.proxy = proxy;
    }

    public TcpProxy proxy() {
        return proxy;
    }

    public void proxy(TcpProxy proxy) {
        this.proxy = proxy;
    }

    @Override
    protected void initChannel(Channel ch) {
        proxy.accept(ch);
    }
}
