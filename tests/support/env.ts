/** Sets environment variables for this test (workers started now inherit them); returns what puts them back. */
export const setEnv = (values: Readonly<Record<string, string>>): (() => void) => {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, process.env[name]]));
  Object.assign(process.env, values);
  return () => {
    for (const [name, value] of Object.entries(saved))
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
  };
};
