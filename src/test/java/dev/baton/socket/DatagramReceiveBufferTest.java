package dev.baton.socket;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.UnpooledByteBufAllocator;
import io.netty.channel.ChannelConfig;
import io.netty.channel.RecvByteBufAllocator;
import io.netty.channel.embedded.EmbeddedChannel;
import io.netty.util.UncheckedBooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The slots an epoll UDP listener's read is offered: one (a recvmsg) while datagrams come one per
 * wake-up, several (one recvmmsg) once they queue. Reports the reads the way Netty's epoll
 * datagram channel does: a recvmmsg as whole slots, a recvmsg as the datagram's size.
 */
class DatagramReceiveBufferTest {
    private static final int SLOT = 65536;
    private static final long LONG_GAP = 1_000_000;
    private static final long SHORT_GAP = 1_000;

    private long now = 5_000_000_000L;
    private final RecvByteBufAllocator.ExtendedHandle h = (RecvByteBufAllocator.ExtendedHandle)
            new DatagramReceiveBuffer(SLOT, 16, 16, () -> now).newHandle();
    private final EmbeddedChannel channel = new EmbeddedChannel();
    private final ChannelConfig config = channel.config();

    @AfterEach
    void close() {
        channel.close();
    }

    /**
     * One wake-up {@code gap} ns after the last one ended: read i finds {@code found[i]} datagrams,
     * until the handle stops reading. Returns the slots each read was offered.
     */
    private List<Integer> wake(long gap, int... found) {
        now += gap;
        h.reset(config);
        List<Integer> offered = new ArrayList<>();
        for (int f : found) {
            ByteBuf b = h.allocate(UnpooledByteBufAllocator.DEFAULT);
            int slots = b.writableBytes() / SLOT;
            offered.add(slots);
            assertEquals(slots * SLOT, h.guess(), "guess() says what allocate() gave");
            h.attemptedBytesRead(b.writableBytes());
            int took = Math.min(f, slots);
            if (took == 0) {
                h.lastBytesRead(-1); // EAGAIN
            } else {
                h.lastBytesRead(slots == 1 ? 64 : took * SLOT);
                h.incMessagesRead(took);
            }
            b.release();
            now += 2_000; // the read and its datagrams' way on
            if (!h.continueReading(UncheckedBooleanSupplier.TRUE_SUPPLIER)) { // as Netty's epoll datagram read loop asks
                break;
            }
        }
        h.readComplete();
        return offered;
    }

    @Test
    void requestResponseReadsOneDatagramPerRecvmsg() {
        assertEquals(List.of(2), wake(LONG_GAP, 1), "the first read of a socket is a recvmmsg of 2");
        for (int i = 0; i < 5; i++) {
            assertEquals(List.of(1), wake(LONG_GAP, 1), "then one recvmsg per wake-up");
        }
    }

    @Test
    void aWakeUpRightAfterTheLastBatchesAgainAndABurstGrowsTheOffer() {
        wake(LONG_GAP, 1);
        assertEquals(List.of(1), wake(LONG_GAP, 1));
        assertEquals(List.of(2, 4, 8, 16), wake(SHORT_GAP, 2, 4, 8, 5), "queueing: the offer doubles while reads fill it");
        assertEquals(List.of(10), wake(SHORT_GAP, 3), "twice the last read's find");
        assertEquals(List.of(6), wake(LONG_GAP, 1), "what a batch found decides, not the gap");
        assertEquals(List.of(1), wake(LONG_GAP, 1), "one found: back to recvmsg");
    }

    @Test
    void aRecvmsgThatFindsItsDatagramEndsTheWakeUp() {
        wake(LONG_GAP, 1);
        assertEquals(List.of(1), wake(LONG_GAP, 1, 1, 1), "the socket is level-triggered: the rest wakes it again");
        assertEquals(List.of(2, 4), wake(SHORT_GAP, 2, 0), "a full recvmmsg reads on until one comes back short");
    }
}
