/* A header-heavy translation unit: the system headers of a portable C
   program (scripts/worker-cost.sh compiles it thousands of times). */
#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <grp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <zlib.h>

#ifndef IT
#define IT 0
#endif

int heavy_unit(int fd, const char *name)
{
    struct stat st;
    char buf[256];
    if (fstat(fd, &st) != 0)
        return -errno;
    snprintf(buf, sizeof buf, "%s-%d-%ld", name, IT, (long)st.st_size);
    return (int)(strlen(buf) + crc32(0L, (const Bytef *)buf, (uInt)strlen(buf)) % 7);
}
