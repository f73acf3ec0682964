package io.netty.channel.epoll;

import io.netty.buffer.ByteBuf;
import io.netty.channel.Channel;
import io.netty.channel.ChannelOutboundBuffer;

import java.io.IOException;
import java.net.InetSocketAddress;

/**
 * Sends one datagram from an epoll datagram channel's socket at once, past the pipeline: no copy
 * of the bytes, no message queued and flushed. For a UDP flow's datagrams both ways when they
 * come one per wake-up (request/response): replies sent back from the listening socket, and a
 * client's datagram sent on the flow's connected socket, each on the worker that read it. Lives
 * in Netty's package to reach the channel's socket; pinned to the Netty version in pom.xml like
 * the other Baton classes here.
 */
public final class BatonDatagrams {
    private BatonDatagrams() {
    }

    /**
     * Sends {@code content} to {@code to} now if nothing is waiting in the channel's own queue
     * (which would go first). Call on the channel's worker.
     *
     * @return true if the datagram was sent, false if it was not tried (an empty one too: Netty's
     *     channel drops those, and so it stays) or the socket cannot take it now: the caller queues
     *     it on the channel
     * @throws IOException if the send failed for good (the datagram is lost, as a failed queued
     *     send would be)
     */
    public static boolean sendNow(Channel ch, ByteBuf content, InetSocketAddress to) throws IOException {
        EpollDatagramChannel d = idle(ch, content);
        if (d == null) {
            return false;
        }
        int n;
        if (content.hasMemoryAddress()) {
            n = d.socket.sendToAddress(content.memoryAddress(), content.readerIndex(), content.writerIndex(),
                    to.getAddress(), to.getPort(), false);
        } else {
            java.nio.ByteBuffer b = content.internalNioBuffer(content.readerIndex(), content.readableBytes());
            n = d.socket.sendTo(b, b.position(), b.limit(), to.getAddress(), to.getPort(), false);
        }
        return n > 0; // a datagram goes whole or not at all; 0 is EAGAIN: the send buffer is full
    }

    /**
     * Sends {@code content} on a socket connected in the kernel (a UDP flow's, adopted ones too,
     * which Netty does not know to be connected) now if nothing is waiting in the channel's own
     * queue. Call on the channel's worker.
     *
     * @return as {@link #sendNow}
     * @throws IOException as {@link #sendNow} (a refusal the kernel heard of by ICMP among them)
     */
    public static boolean writeNow(Channel ch, ByteBuf content) throws IOException {
        EpollDatagramChannel d = idle(ch, content);
        if (d == null) {
            return false;
        }
        int n;
        try {
            if (content.hasMemoryAddress()) {
                n = d.socket.sendAddress(content.memoryAddress(), content.readerIndex(), content.writerIndex());
            } else {
                java.nio.ByteBuffer b = content.internalNioBuffer(content.readerIndex(), content.readableBytes());
                n = d.socket.send(b, b.position(), b.limit());
            }
        } catch (java.nio.channels.NotYetConnectedException e) {
            return false; // not connected after all: the channel's own write sends it with its address
        }
        return n > 0;
    }

    /**
     * The channel, if {@code content} can go out on its socket now: an open epoll datagram
     * channel with nothing in its own queue (which would go first), and a datagram that is not
     * empty (Netty's channel drops those, and so it stays). Null if not.
     */
    private static EpollDatagramChannel idle(Channel ch, ByteBuf content) {
        if (!(ch instanceof EpollDatagramChannel d) || !d.isActive() || !content.isReadable()) {
            return null;
        }
        ChannelOutboundBuffer queued = d.unsafe().outboundBuffer();
        return queued == null || !queued.isEmpty() ? null : d;
    }
}
