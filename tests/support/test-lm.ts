/** A rule of the test LM (python-consumers/dspex_consumers/lms/test_lm.py): when these texts occur, answer this. */
export const testLmRule = (when: string | string[], answer: Record<string, unknown>) => ({
  when,
  // biome-ignore lint/suspicious/noThenProperty: the test LM's rule format ({when, then}), never awaited
  then: answer,
});
