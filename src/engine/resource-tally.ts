/** What an attempt asks for, as far as fitting it beside others goes (memory null counts as 0). */
export interface Demand {
  cpus: number;
  memory: number | null;
}

/**
 * The cpus and memory a set of attempts asks for in all. The coordinator keeps one for what it
 * has launched; a pull worker keeps one for what it holds and one for what it has started.
 */
export class ResourceTally {
  cpus = 0;
  memory = 0;

  /** Whether `demand` fits beside what is counted, within `limit`. */
  fits(demand: Demand, limit: { cpus: number; memory: number }): boolean {
    return this.cpus + demand.cpus <= limit.cpus && this.memory + (demand.memory ?? 0) <= limit.memory;
  }

  add(demand: Demand): void {
    this.cpus += demand.cpus;
    this.memory += demand.memory ?? 0;
  }

  remove(demand: Demand): void {
    this.cpus -= demand.cpus;
    this.memory -= demand.memory ?? 0;
  }
}
