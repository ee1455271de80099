/** A metric family and its samples: what collect.ts produces and the renderers and the RPC read. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

export interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge';
  samples: Sample[];
}
