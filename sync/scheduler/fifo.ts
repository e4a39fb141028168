/**
 * A FIFO with O(1) push, shift and removal of any element by its handle: a doubly linked list.
 * The scheduler needs removal from the middle (a queued repo gets forgotten, or moves to a more
 * urgent queue) without scanning 10k entries, which a plain array cannot do.
 */

export interface FifoHandle<T> {
  readonly value: T;
}

interface Node<T> extends FifoHandle<T> {
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
  /** The list holding the node, or undefined once it left; guards against double removal. */
  owner: Fifo<T> | undefined;
}

export class Fifo<T> {
  private head: Node<T> | undefined;
  private tail: Node<T> | undefined;
  private count = 0;

  get size(): number {
    return this.count;
  }

  /** Append; keep the handle to remove the element later. */
  push(value: T): FifoHandle<T> {
    const node: Node<T> = { value, prev: this.tail, next: undefined, owner: this };
    if (this.tail) this.tail.next = node;
    else this.head = node;
    this.tail = node;
    this.count++;
    return node;
  }

  /** Remove and return the oldest element. */
  shift(): T | undefined {
    const node = this.head;
    if (!node) return undefined;
    this.unlink(node);
    return node.value;
  }

  /** Remove an element by its handle; false if it is not (or no longer) in this list. */
  remove(handle: FifoHandle<T>): boolean {
    const node = handle as Node<T>;
    if (node.owner !== this) return false;
    this.unlink(node);
    return true;
  }

  *[Symbol.iterator](): IterableIterator<T> {
    for (let n = this.head; n; n = n.next) yield n.value;
  }

  private unlink(node: Node<T>): void {
    if (node.prev) node.prev.next = node.next;
    else this.head = node.next;
    if (node.next) node.next.prev = node.prev;
    else this.tail = node.prev;
    node.prev = node.next = node.owner = undefined;
    this.count--;
  }
}
