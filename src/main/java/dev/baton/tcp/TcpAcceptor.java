package dev.baton.tcp;

import io.netty.channel.Channel;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.channel.epoll.BatonAccepted;

/**
 * The handler of every socket of one TCP listen address: takes each accepted connection as the
 * listening socket reads it (on epoll a {@link BatonAccepted}, a socket without a channel; on the
 * other transports a channel) and hands it to the proxy currently serving that address (a reload
 * may swap it; the sockets stay). It sets the new socket up and registers it itself, so Netty's
 * generic acceptor (child options, a handler added and removed, a listener per connection) never
 * sees it. Accept errors (descriptors running out, for one) end here too: reported at most every
 * 10 s, and accepting pauses for a second, as Netty's acceptor would do after logging each one
 * with its stack trace.
 */
@ChannelHandler.Sharable
public final class TcpAcceptor extends ChannelInboundHandlerAdapter {
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

    /** An accept failed (out of descriptors, for one): reported, and accepting pauses for a second. */
    @Override
    public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
        proxy.acceptFailed(ctx.channel(), cause);
    }

    @Override
    public void channelRead(ChannelHandlerContext ctx, Object msg) {
        if (msg instanceof BatonAccepted accepted) { // epoll: a socket, its channel made only if needed
            proxy.accept(accepted);
        } else if (msg instanceof Channel child) {
            proxy.accept(child, ctx.channel());
        } else {
            ctx.fireChannelRead(msg);
        }
    }
}
