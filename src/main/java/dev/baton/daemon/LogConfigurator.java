package dev.baton.daemon;

import ch.qos.logback.classic.Level;
import ch.qos.logback.classic.LoggerContext;
import ch.qos.logback.classic.PatternLayout;
import ch.qos.logback.classic.spi.Configurator;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.ConsoleAppender;
import ch.qos.logback.core.CoreConstants;
import ch.qos.logback.core.LayoutBase;
import ch.qos.logback.core.encoder.LayoutWrappingEncoder;
import ch.qos.logback.core.spi.ContextAwareBase;
import org.slf4j.Logger;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.ZoneId;
import java.time.format.DateTimeFormatter;
import java.util.Arrays;

/**
 * Applies the logging configuration baton ships (logback.xml: one line per event on stdout,
 * io.netty at WARN, the root at BATON_LOG_LEVEL or INFO) in code when the file the launcher names
 * is that file unchanged, and otherwise leaves it to logback, which reads the file as usual.
 * Same outcome; logback's XML configurator took 0.15-0.2 s of every start (docs/jvm.md).
 * Registered with logback as a service, so it runs before logback's own configurators.
 */
public final class LogConfigurator extends ContextAwareBase implements Configurator {
    /** The pattern of the shipped logback.xml (LogConfiguratorTest holds the two together). */
    static final String PATTERN = "%d{yyyy-MM-dd'T'HH:mm:ss.SSS} %-5level [%thread] %logger{0}: %msg%n";

    @Override
    public ExecutionStatus configure(LoggerContext context) {
        try {
            Level root = shippedFileLevel();
            if (root == null) {
                return ExecutionStatus.INVOKE_NEXT_IF_ANY;
            }
            Layout layout = new Layout();
            layout.setContext(context);
            layout.start();
            LayoutWrappingEncoder<ILoggingEvent> encoder = new LayoutWrappingEncoder<>();
            encoder.setContext(context);
            encoder.setLayout(layout);
            encoder.start();
            ConsoleAppender<ILoggingEvent> stdout = new ConsoleAppender<>();
            stdout.setContext(context);
            stdout.setName("STDOUT");
            stdout.setEncoder(encoder);
            stdout.start();
            context.getLogger("io.netty").setLevel(Level.WARN);
            ch.qos.logback.classic.Logger r = context.getLogger(Logger.ROOT_LOGGER_NAME);
            r.setLevel(root);
            r.addAppender(stdout);
            return ExecutionStatus.DO_NOT_INVOKE_NEXT_IF_ANY;
        } catch (RuntimeException | IOException e) {
            addWarn("baton's logging setup failed; logback reads the file itself", e);
            return ExecutionStatus.INVOKE_NEXT_IF_ANY;
        }
    }

    /**
     * The root level if logback.configurationFile names a file identical to the shipped one and
     * BATON_LOG_LEVEL (a system property, else the environment, as logback looks them up) is unset
     * or a level's name; otherwise null: logback's own configurators take over.
     */
    static Level shippedFileLevel() throws IOException {
        String file = System.getProperty("logback.configurationFile");
        if (file == null || !Files.isRegularFile(Path.of(file))) {
            return null;
        }
        byte[] shipped;
        try (InputStream in = LogConfigurator.class.getResourceAsStream("/logback.xml")) {
            if (in == null) {
                return null;
            }
            shipped = in.readAllBytes();
        }
        if (!Arrays.equals(shipped, Files.readAllBytes(Path.of(file)))) {
            return null;
        }
        String level = System.getProperty("BATON_LOG_LEVEL", System.getenv("BATON_LOG_LEVEL"));
        if (level == null) {
            return Level.INFO;
        }
        return Level.toLevel(level, null);
    }

    /**
     * {@link #PATTERN} written out by hand: logback's pattern parser (building a converter chain
     * by reflection) took 30-60 ms of a start. An event with an exception goes through a
     * PatternLayout of the same pattern, made on first need, so stack traces look as logback
     * prints them.
     */
    static final class Layout extends LayoutBase<ILoggingEvent> {
        private static final DateTimeFormatter TIME =
                DateTimeFormatter.ofPattern("yyyy-MM-dd'T'HH:mm:ss.SSS").withZone(ZoneId.systemDefault());
        private PatternLayout withThrowable;

        @Override
        public String doLayout(ILoggingEvent e) {
            if (e.getThrowableProxy() != null) {
                return throwableLayout().doLayout(e);
            }
            String level = e.getLevel().toString();
            String logger = e.getLoggerName();
            StringBuilder b = new StringBuilder(64 + e.getFormattedMessage().length());
            TIME.formatTo(Instant.ofEpochMilli(e.getTimeStamp()), b);
            b.append(' ').append(level);
            for (int i = level.length(); i < 5; i++) {
                b.append(' ');
            }
            b.append(" [").append(e.getThreadName()).append("] ")
                    .append(logger, logger.lastIndexOf('.') + 1, logger.length())
                    .append(": ").append(e.getFormattedMessage()).append(CoreConstants.LINE_SEPARATOR);
            return b.toString();
        }

        private synchronized PatternLayout throwableLayout() {
            if (withThrowable == null) {
                PatternLayout p = new PatternLayout();
                p.setContext(getContext());
                p.setPattern(PATTERN);
                p.start();
                withThrowable = p;
            }
            return withThrowable;
        }
    }
}
