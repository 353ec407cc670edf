/** Whether this process may mount a tmpfs or a read-only bind (see mounts.mjs). */
export function mayMount(): boolean;
