/**
 * Free lists shared by every engine in the process, one per buffer size (kcp-go's global xmitBuf
 * pool). Sharing matters: an EasyTier node runs one engine per proxied flow, and per-engine pools
 * would each keep their high-water mark of idle buffers.
 */
export class FreeList<T> {
  private readonly lists = new Map<number, T[]>();

  constructor(private readonly limitPerSize: number) {}

  take(size: number): T | undefined {
    return this.lists.get(size)?.pop();
  }

  give(size: number, item: T): void {
    let list = this.lists.get(size);
    if (list === undefined) {
      list = [];
      this.lists.set(size, list);
    }
    if (list.length < this.limitPerSize) list.push(item);
  }
}
