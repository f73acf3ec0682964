package dev.baton.socket;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.DefaultMaxMessagesRecvByteBufAllocator;

/**
 * How io_uring UDP listening sockets read. Netty submits one recvmsg per slot of the buffer a
 * read is given (linked; all but the first with MSG_DONTWAIT), so the slots offered decide how
 * many datagrams one trip through the ring brings. The offer adapts to what reads find: twice
 * the last read's when that read filled every slot, else what it filled, at least one. A burst grows it to
 * {@code maxSlots}; request/response traffic stays at one or two, since every unfilled slot is a
 * recvmsg that comes back EAGAIN. Unlike epoll's shared buffer, a read's buffer is held while
 * its first recvmsg waits: an idle socket holds one to {@code maxSlots} slots.
 */
public final class UringDatagramReads extends DefaultMaxMessagesRecvByteBufAllocator {
    private final int slotSize;
    private final int maxSlots;

    /**
     * @param slotSize     bytes per datagram: the largest one, so nothing is truncated
     * @param maxSlots     datagrams per read at most
     * @param readsPerWake datagrams per read loop before the batch is handed on
     */
    public UringDatagramReads(int slotSize, int maxSlots, int readsPerWake) {
        super(readsPerWake);
        this.slotSize = slotSize;
        this.maxSlots = maxSlots;
    }

    @Override
    public Handle newHandle() {
        return new MaxMessageHandle() {
            private int offered;
            private int filled;

            @Override
            public ByteBuf allocate(ByteBufAllocator alloc) {
                int slots = filled >= offered ? Math.min(maxSlots, Math.max(1, 2 * offered)) : Math.max(1, filled);
                offered = slots;
                filled = 0;
                return alloc.ioBuffer(slots * slotSize, slots * slotSize);
            }

            /** Called once per recvmsg: a datagram's size, or 0 for one that found nothing. */
            @Override
            public void lastBytesRead(int bytes) {
                super.lastBytesRead(bytes);
                if (bytes > 0) {
                    filled++;
                }
            }

            @Override
            public int guess() {
                return Math.max(1, offered) * slotSize;
            }
        };
    }
}
