/* amx_stream.c — AMX int8 tile loads streaming weights from a ring (L3-sized by default), with
 * the compute pattern of q8_amx's 16-row run around them, in GB/s of weights (dev/cpu/NOTES.md).
 *   gcc -O2 -mamx-tile -mamx-int8 dev/cpu/amx_stream.c -o /tmp/amx_stream
 *   /tmp/amx_stream MODE [RING_MB]
 * MODE 0: per column pair (2 blocks of 16 columns, K 384) six steps of A4 B6 B7 dp dp A5 dp dp,
 *         then the four C tiles stored (q8_amx's loop for a 16-token query);
 *      1: the same without the stores between pairs;
 *      2: one block per pass, B tiles 6/7 and A tiles (2,3)/(4,5) alternating (double-buffered);
 *      3: the B tile loads alone (the stream's limit). */
#include <immintrin.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } tilecfg;
static double now(void){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
static int8_t A[32*384] __attribute__((aligned(64)));
static long RING;
int main(int argc,char**argv){
  int mode=atoi(argv[1]); RING=(argc>2?atol(argv[2]):24l)<<20;
  syscall(SYS_arch_prctl, 0x1023, 18);
  int8_t *B=aligned_alloc(4096,RING); memset(B,1,RING);
  tilecfg c; memset(&c,0,sizeof c); c.palette=1; for(int i=0;i<8;i++){c.rows[i]=16;c.colsb[i]=64;}
  _tile_loadconfig(&c);
  const long Kp=384; double best=1e30;
  for(int rep=0;rep<5;rep++){
  double t0=now();
  if(mode==0){ /* current: per column pair (2 blocks, 12KB), 6 steps: A4,B6,B7,dp,dp,A5,dp,dp */
    for(long off=0; off+12288<=RING; off+=12288){ const int8_t*b0=B+off,*b1=b0+Kp*16;
      _tile_zero(0);_tile_zero(1);_tile_zero(2);_tile_zero(3);
      for(int k=0;k<6;k++){ _tile_loadd(4,A+k*64,Kp);_tile_loadd(6,b0+k*1024,64);_tile_loadd(7,b1+k*1024,64);
        _tile_dpbssd(0,4,6);_tile_dpbssd(1,4,7);_tile_loadd(5,A+16*Kp+k*64,Kp);_tile_dpbssd(2,5,6);_tile_dpbssd(3,5,7);}
      _tile_stored(0,A,64);_tile_stored(1,A,64);_tile_stored(2,A,64);_tile_stored(3,A,64);} }
  else if(mode==1){ /* same without the stores between pairs */
    _tile_zero(0);_tile_zero(1);_tile_zero(2);_tile_zero(3);
    for(long off=0; off+12288<=RING; off+=12288){ const int8_t*b0=B+off,*b1=b0+Kp*16;
      for(int k=0;k<6;k++){ _tile_loadd(4,A+k*64,Kp);_tile_loadd(6,b0+k*1024,64);_tile_loadd(7,b1+k*1024,64);
        _tile_dpbssd(0,4,6);_tile_dpbssd(1,4,7);_tile_loadd(5,A+16*Kp+k*64,Kp);_tile_dpbssd(2,5,6);_tile_dpbssd(3,5,7);}}
    _tile_stored(0,A,64);}
  else if(mode==2){ /* one block per pass, B double-buffered 6/7, A double-buffered (2,3)/(4,5), C0 C1 */
    for(long off=0; off+6144<=RING; off+=6144){ const int8_t*b0=B+off;
      _tile_zero(0);_tile_zero(1);
      for(int k=0;k<6;k+=2){
        _tile_loadd(6,b0+k*1024,64);_tile_loadd(2,A+k*64,Kp);_tile_loadd(3,A+16*Kp+k*64,Kp);
        _tile_dpbssd(0,2,6);_tile_dpbssd(1,3,6);
        _tile_loadd(7,b0+(k+1)*1024,64);_tile_loadd(4,A+(k+1)*64,Kp);_tile_loadd(5,A+16*Kp+(k+1)*64,Kp);
        _tile_dpbssd(0,4,7);_tile_dpbssd(1,5,7);}
      _tile_stored(0,A,64);_tile_stored(1,A,64);} }
  else if(mode==3){ /* loads only, same bytes */
    for(long off=0; off+2048<=RING; off+=2048){ _tile_loadd(6,B+off,64);_tile_loadd(7,B+off+1024,64);} }
  double t=now()-t0; if(t<best)best=t;}
  printf("mode %d ring %ld MB: %.1f GB/s of B\n",mode,RING>>20,RING/best);
  _tile_release();
}
