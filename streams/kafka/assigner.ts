import { AssignerProtocol, type PartitionAssigner } from "kafkajs";
import { assignTasks, partitionsOfTasks, taskCount } from "../assignment.ts";

export const coPartitionedAssignerName = "DspexCoPartitioned";

/** What a member tells the group leader it holds now, so the leader keeps it there (stickiness). */
const encodeTasks = (tasks: readonly number[]): Buffer => Buffer.from(JSON.stringify(tasks), "utf8");

const decodeTasks = (userData: Buffer | null | undefined): number[] => {
  try {
    const parsed: unknown = JSON.parse(userData?.toString("utf8") || "[]");
    return Array.isArray(parsed) ? parsed.filter((t): t is number => Number.isInteger(t) && t >= 0) : [];
  } catch {
    return [];
  }
};

/**
 * kafkajs's group protocol for dspex processors: task p (partition p of every subscribed topic) goes to one
 * member, sticky and balanced (see streams/assignment.ts). `held` says which tasks this member has now.
 */
export const coPartitionedAssigner =
  (held: () => readonly number[]): PartitionAssigner =>
  ({ cluster }) => ({
    name: coPartitionedAssignerName,
    version: 1,
    async assign({ members, topics }) {
      const counts = topics.map((topic) => ({
        topic,
        partitions: cluster.findTopicPartitionMetadata(topic).length,
      }));
      const current = new Map<number, string>();
      for (const { memberId, memberMetadata } of members) {
        const { userData } = AssignerProtocol.MemberMetadata.decode(memberMetadata) ?? {};
        for (const task of decodeTasks(userData)) if (!current.has(task)) current.set(task, memberId);
      }
      const owners = assignTasks(
        taskCount(counts.map((c) => c.partitions)),
        members.map((m) => m.memberId),
        current,
      );
      return members.map(({ memberId }) => {
        const tasks = [...owners].filter(([, owner]) => owner === memberId).map(([task]) => task);
        const assignment: Record<string, number[]> = {};
        for (const { topic, partition } of partitionsOfTasks(tasks, counts))
          assignment[topic] = [...(assignment[topic] ?? []), partition];
        return {
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({
            version: 1,
            assignment,
            userData: Buffer.alloc(0),
          }),
        };
      });
    },
    protocol({ topics }) {
      return {
        name: coPartitionedAssignerName,
        metadata: AssignerProtocol.MemberMetadata.encode({
          version: 1,
          topics,
          userData: encodeTasks(held()),
        }),
      };
    },
  });
