bp::network! {
    struct Net {
        input x: [4];
        let fc1 = linear(x, 3);
        let h = relu(fc);
        output h;
    }
}

fn main() {}
