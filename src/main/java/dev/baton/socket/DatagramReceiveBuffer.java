package dev.baton.socket;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufAllocator;
import io.netty.channel.DefaultMaxMessagesRecvByteBufAllocator;
import io.netty.util.UncheckedBooleanSupplier;
import io.netty.util.concurrent.FastThreadLocal;

/**
 * How UDP sockets read: into one receive buffer per worker thread, reused read after read.
 * A datagram may be up to 64 KiB, so a read needs a buffer that size (a batch of reads with
 * recvmmsg, a multiple of it), yet most datagrams are small: allocating that buffer per read was
 * a pool-arena allocation per datagram, and a small datagram queued for sending pinned it whole.
 * The UDP handlers send each datagram on, or copy it out (into a buffer of its own size), before
 * the next read, so the worker's buffer is free again by then (a datagram held during a takeover
 * is copied out too); should anything else still hold part of it, reads take a fresh buffer
 * instead.
 */
public final class DatagramReceiveBuffer extends DefaultMaxMessagesRecvByteBufAllocator {
    private final int slotSize;
    private final int maxSlots;
    private final java.util.function.LongSupplier clock;
    private final FastThreadLocal<ByteBuf> buffers = new FastThreadLocal<>() {
        @Override
        protected void onRemoval(ByteBuf b) {
            b.release();
        }
    };

    /**
     * @param slotSize     bytes per datagram: the largest one
     * @param maxSlots     datagrams per read: 1 for recvmsg, more for recvmmsg (the epoll
     *                     transport reads with recvmmsg when a read offers room for several)
     * @param readsPerWake datagrams per readiness event before the batch is handed on
     */
    public DatagramReceiveBuffer(int slotSize, int maxSlots, int readsPerWake) {
        this(slotSize, maxSlots, readsPerWake, System::nanoTime);
    }

    /** As above, with the clock that times the gaps between wake-ups (tests). */
    DatagramReceiveBuffer(int slotSize, int maxSlots, int readsPerWake, java.util.function.LongSupplier clock) {
        super(readsPerWake);
        this.slotSize = slotSize;
        this.maxSlots = maxSlots;
        this.clock = clock;
    }

    /**
     * A wake-up this soon after the last one's reads ended means datagrams are queueing: the
     * next read takes several with recvmmsg. Later than this, one datagram is the likely find.
     */
    static final long BURST_GAP_NANOS = 10_000;

    @Override
    public Handle newHandle() {
        return new MaxMessageHandle() {
            /**
             * Slots offered to the next read. One slot is a plain recvmsg; more are one recvmmsg,
             * which costs a getsockopt in Netty's native code besides and is worth it only when
             * several datagrams are waiting. So a read offers twice what the last one filled
             * while they come in batches (up to maxSlots), and a single slot once a read finds
             * only one: request/response traffic then costs one recvmsg per wake-up (and a read
             * that fills fewer slots than offered ends the wake-up; the socket is level-triggered
             * in the epoll set, so anything that arrived meanwhile wakes it again). A wake-up that
             * follows the last one's reads within {@link #BURST_GAP_NANOS} offers 2 again.
             */
            private int slots = Math.min(2, maxSlots);
            /** When the last wake-up's reads ended, if they left a single-slot offer (clock). */
            private long lastEnd;

            @Override
            public void reset(io.netty.channel.ChannelConfig config) {
                super.reset(config);
                if (slots == 1 && maxSlots > 1 && clock.getAsLong() - lastEnd < BURST_GAP_NANOS) {
                    slots = 2;
                }
            }

            @Override
            public ByteBuf allocate(ByteBufAllocator alloc) {
                ByteBuf b = buffers.get();
                if (b == null || b.refCnt() != 1) {
                    if (b != null) {
                        b.release(); // its other holders free it
                    }
                    b = alloc.directBuffer(slotSize * maxSlots, slotSize * maxSlots);
                    buffers.set(b);
                }
                return b.retainedSlice(0, slots * slotSize).clear();
            }

            @Override
            public void lastBytesRead(int bytes) {
                super.lastBytesRead(bytes);
                if (maxSlots > 1 && bytes > 0 && slots > 1) {
                    // a recvmmsg reports whole slots: the datagrams it took
                    int filled = bytes / slotSize;
                    slots = filled <= 1 ? 1 : Math.min(maxSlots, 2 * filled);
                }
            }

            /**
             * One recvmsg at a time reads on (a batch per wake-up: maxSlots of 1); a read offered
             * several slots that filled fewer found the socket empty, and one offered a single
             * slot by choice leaves the rest to the next wake-up.
             */
            @Override
            public boolean continueReading(UncheckedBooleanSupplier maybeMoreData) {
                return super.continueReading(maybeMoreData) && (maxSlots == 1 || lastBytesRead() == attemptedBytesRead());
            }

            /** Only a single-slot offer looks at the gap (in {@link #reset}), so only it needs the time. */
            @Override
            public void readComplete() {
                super.readComplete();
                if (slots == 1 && maxSlots > 1) {
                    lastEnd = clock.getAsLong();
                }
            }

            @Override
            public int guess() {
                return slots * slotSize;
            }
        };
    }
}
